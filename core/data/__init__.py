"""Dataset readers and preprocessing, plus the independent confirmation-data generator ``parts`` (a package) (the demo generator is ``core.demo``)."""
