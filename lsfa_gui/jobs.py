"""The window's engine work: starting, queueing and cancelling jobs (``lsfa_gui.tasks`` on a
:class:`~lsfa_gui.runner.JobRunner`), putting their messages and results into the state, the
threshold-free metrics, the model/data check's banner, and saving the model or its thresholds
and exporting overlays or the HTML report in the background."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer

from core.self_check import describe_weak_modalities
from lsfa_gui import export, tasks
from lsfa_gui.colormaps import lut
from lsfa_gui.runner import JobRunner
from lsfa_gui.state import ModelInfo, SampleEntry, ThresholdSettings
from lsfa_gui.widgets.metrics_panel import compute_metrics, metrics_input


def entries_from_refs(refs: list[Any]) -> list[SampleEntry]:
    return [SampleEntry(name=r.name, split=r.split, label=r.label, source=r.source(), ref=r) for r in refs]


class JobControl:
    """MainWindow's part that runs engine work: ``jobs`` (open / fit / score / watch, one at a
    time), ``aux`` (saves and exports) and ``metrics_runner``. Needs the window's ``state``,
    ``status``, ``metrics``, ``log`` and ``set_title``."""

    def _init_jobs(self) -> None:
        self.jobs = JobRunner(self)  # fit / score / open: one at a time, new supersedes old
        self.aux = JobRunner(self)  # save / export: independent of the main job
        self.metrics_runner = JobRunner(self)  # threshold-free metrics after scoring
        self._queued: list = []  # actions to start after the current job succeeds
        self._aux_done: dict[int, Any] = {}  # aux request id -> what to do with its result

    def _connect_jobs(self) -> None:
        """Wire the runners to the status bar, the log and the state (once the panels exist)."""
        self.threshold_panel.save_requested.connect(self.save_thresholds)
        self.status.cancel_button.clicked.connect(self.cancel_job)
        self.jobs.started.connect(lambda _rid, title: self.status.job_started(title))
        self.jobs.progressed.connect(lambda _rid, ev: self.status.job_progress(ev))
        self.jobs.partial.connect(self._on_partial)
        self.jobs.succeeded.connect(self._on_job_succeeded)
        self.jobs.failed.connect(self._on_job_failed)
        self.jobs.cancelled.connect(self._on_job_cancelled)
        self.aux.succeeded.connect(self._on_aux_succeeded)
        self.aux.failed.connect(lambda _rid, msg, details: self.log(msg, "error", details))
        self.metrics_runner.succeeded.connect(self._on_metrics)
        self.metrics_runner.failed.connect(lambda _rid, msg, details: self.log(f"Metrics: {msg}", "error", details))

    def _shutdown_jobs(self, timeout_ms: int = 10000) -> None:
        for runner in (self.jobs, self.aux, self.metrics_runner):
            runner.shutdown(timeout_ms)

    @property
    def model(self):
        """The open core.model.Model (kept on the state), or None."""
        return self.state.model.model

    @property
    def model_path(self) -> str | None:
        return self.state.model.path

    def _start_job(self, title: str, fn) -> int:
        self.state.set_metrics(None)
        return self.jobs.start(title, fn)

    def queue_after_job(self, action) -> None:
        """Run ``action()`` now if no job runs, else after the current one succeeds."""
        if self.jobs.busy:
            self._queued.append(action)
        else:
            action()

    def _run_queued(self):
        if self._queued and not self.jobs.busy:
            self._queued.pop(0)()

    def cancel_job(self):
        if self.jobs.busy:
            self.jobs.cancel()

    def start_demo(self, counts: dict | None = None, config=None):
        """Generate the demo data (once), load or fit its model, score its test split."""
        self._start_job("Demo", tasks.demo_job(counts=counts, config=config))

    def open_dataset(self, root: str, category: str | None = None, fit_if_needed: bool = False, config=None,
                     xyz_units: str | None = None):
        """List and score a dataset; ``fit_if_needed`` fits a model first when none is open
        (with ``config``, a FitConfig, and ``xyz_units``, the point unit, from the Fit settings
        dialog, or a cached/default model)."""
        fit = fit_if_needed and self.model is None
        self._start_job("Open dataset", tasks.open_dataset_job(root, category, self.model, fit, config if fit else None,
                                                               xyz_units if fit else None))

    def open_model(self, path: str):
        """Load a model file, then score the listed samples with it."""
        reqs = [tasks.SampleRequest(i, e.ref) for i, e in enumerate(self.state.entries) if e.ref is not None]
        self._start_job("Load model", tasks.load_model_job(path, reqs))

    def open_samples(self, paths: list[str]):
        self._start_job("Open samples", tasks.open_samples_job(paths))

    def open_path(self, path: str):
        """``main.py PATH``: a model file, a dataset folder or a single sample file."""
        p = Path(path)
        if p.is_file() and p.suffix.lower() == tasks.MODEL_SUFFIX:
            self.open_model(str(p))
        elif p.is_dir():
            self.open_dataset(str(p))
        else:
            self.open_samples([str(p)])

    def score_all(self):
        if self.model is None:
            self.log("No model: open a model file or fit one first.", "warning")
            return
        reqs = [tasks.SampleRequest(i, e.ref) for i, e in enumerate(self.state.entries) if e.ref is not None]
        if not reqs:
            self.log("Nothing to score: open a dataset or samples first.", "warning")
            return
        self._start_job("Scoring", tasks.score_job(self.model, reqs))

    def fit_current_dataset(self, config=None, xyz_units: str | None = None):
        """Fit on the open dataset with ``config`` (a FitConfig) and its point clouds read in
        ``xyz_units`` (None: metres); without ``config``, ask both with the Fit settings dialog."""
        if not self.state.dataset_root or not self.state.category:
            self.log("Open a dataset folder first (it needs a train split of good samples).", "warning")
            return
        if config is None:
            from lsfa_gui.widgets.fit_dialog import FitDialog

            n_train, modalities = tasks.train_summary(self.state.dataset_root, self.state.category)
            dialog = FitDialog(self.settings, parent=self, n_train=n_train or None, data_modalities=modalities or None)
            dialog.exec()
            if dialog.result_config is None:  # cancelled
                return
            config, xyz_units = dialog.result_config, dialog.result_units
        reqs = [tasks.SampleRequest(i, e.ref) for i, e in enumerate(self.state.entries) if e.ref is not None]
        # the current model and its results stay until the new model is ready (a cancelled or
        # failed fit leaves them as they were); its region of interest carries over to the new fit
        roi = getattr(self.model, "roi", None)
        if roi is not None:
            self.log("Fitting with the open model's region of interest (thresholds calibrated inside it).")
        self._start_job("Fitting", tasks.fit_job(self.state.dataset_root, self.state.category, None, config,
                                                 score_refs=reqs, roi=roi,
                                                 roi_source=getattr(self.model, "roi_source", "region of interest"),
                                                 xyz_units=xyz_units))

    def _on_partial(self, _rid: int, msg: Any):
        if isinstance(msg, tasks.WatchScored):
            self._on_watch_scored(msg.record)
        elif isinstance(msg, tasks.SampleScored):
            self.state.set_result(msg.index, msg.result)
            if self.state.current < 0:
                self.state.set_current(msg.index)
        elif isinstance(msg, tasks.DatasetOpened):
            self._show_listing(msg.listing)
        elif isinstance(msg, tasks.ModelReady):
            self._on_model_ready(msg)
        elif isinstance(msg, tasks.SampleFailed) and msg.quiet:
            pass  # told once for the batch (the data banner)
        elif isinstance(msg, tasks.SampleFailed):
            name = self.state.entries[msg.index].name if 0 <= msg.index < len(self.state.entries) else "?"
            self.log(f"{name}: {msg.message}", "warning")
        elif isinstance(msg, tasks.Note):
            self.log(msg.text, msg.level)
        elif isinstance(msg, tasks.DataMismatch):
            self.data_banner.show_findings(msg.messages)
            for text in msg.messages:
                self.log(f"Model/data check: {text}", "warning")

    def _show_listing(self, listing: tasks.DatasetListing):
        self.state.dataset_root = listing.root
        self.state.category = listing.category
        self.state.set_entries(entries_from_refs(listing.refs))
        if listing.refs:  # the first sample shows at once (as loaded), before any fit or scoring
            self.state.set_current(0)
        others = [c for c in listing.categories if c != listing.category]
        more = f" (other categories: {', '.join(others)})" if others else ""
        self.log(f"Opened {listing.format} dataset {listing.root}, category {listing.category!r}: {len(listing.refs)} samples{more}")
        self.set_title(f"{Path(listing.root).name} / {listing.category}")
        self.settings.add_recent("folders", listing.root)

    def _on_model_ready(self, msg: tasks.ModelReady):
        """A job loaded or fitted a model: it replaces the open one, and the old model's scores
        go (the job scores the samples with the new model next)."""
        self.state.clear_results()
        self._set_model(msg.model, msg.path)
        self.log(("Fitted" if msg.fitted else "Loaded") + f" model {msg.path}", "success")
        if msg.path:
            self.settings.add_recent("models", msg.path)
            self.settings.set_last_dir("model", str(Path(msg.path).parent))

    def _set_model(self, model, path: str | None):
        thr = getattr(model, "thresholds", None)
        seeded = ThresholdSettings(getattr(thr, "image", None), getattr(thr, "pixel", None),
                                   getattr(thr, "uncertain_until", None),
                                   min_defect_area=getattr(thr, "min_defect_area", 0))
        rng = getattr(model, "display_range", None)
        name = Path(path).name if path else "unsaved model"
        check = (getattr(model, "info", None) or {}).get("self_check") or {}
        self.state.set_model(ModelInfo(model=model, path=path, name=name, seeded=seeded, colour_range=tuple(rng) if rng else None,
                                       estimate=check.get("estimate"), self_check_note=describe_weak_modalities(check),
                                       model_id=getattr(model, "model_id", "") or "",
                                       threshold_spread=getattr(thr, "image_spread", None)))

    def _on_job_succeeded(self, _rid: int, result: Any):
        self._handle_result(result)
        QTimer.singleShot(0, self._run_queued)

    def _handle_result(self, result: Any):
        if isinstance(result, list):  # sample refs from "Open samples"
            indices = self.state.add_entries(entries_from_refs(result))
            self.log(f"Opened {len(result)} sample(s)")
            self.status.job_ended(f"Opened {len(result)} sample(s)")
            if self.model is not None:
                reqs = [tasks.SampleRequest(i, self.state.entries[i].ref) for i in indices]
                QTimer.singleShot(0, lambda: self._start_job("Scoring", tasks.score_job(self.model, reqs)))
            elif not self._queued:  # a queued action (e.g. main.py PATH --model) may load one next
                self.log("No model yet: open a model file (or fit one) to score these samples.", "warning")
            if self.state.current < 0 and indices:
                self.state.set_current(indices[0])
            return
        if isinstance(result, tasks.JobSummary):
            self.state.fit_colour_range_to_results()
            text = f"Scored {result.scored} sample(s)" + (f", {result.failed} failed" if result.failed else "")
            if result.model is None and result.listing is not None:
                text = f"Opened {len(result.listing.refs)} samples (no model yet: open one or Fit)"
            elif result.listing is None and not result.scored and not result.failed:
                text = "Model loaded"
            self.status.job_ended(text)
            self.log(text, "success" if not result.failed else "warning")
            if result.scored:
                self._start_metrics()
                self.scoring_finished.emit()
            return
        self.status.job_ended("Done")

    def _on_job_failed(self, _rid: int, message: str, details: str):
        self._queued.clear()
        self.status.job_ended("Failed")
        self.log(message, "error", details)

    def _on_job_cancelled(self, _rid: int):
        self._queued.clear()
        self.status.job_ended("Cancelled")
        self.log("Cancelled.", "warning")

    def _start_metrics(self):
        data = metrics_input(self.state)
        self.metrics_runner.start("Metrics", lambda progress: compute_metrics(data, progress))

    def _on_metrics(self, _rid: int, result: Any):
        n = len(self.state.labelled_scores()[0])
        self.state.set_metrics(result, f"Over {n} labelled scored samples.")
        self.metrics_updated.emit()

    def _start_aux(self, title: str, fn, done) -> None:
        """Run ``fn`` beside the main job; ``done(result)`` runs on this thread when it succeeds."""
        self._aux_done[self.aux.start(title, fn)] = done

    def _on_aux_succeeded(self, rid: int, result: Any):
        done = self._aux_done.pop(rid, None)
        if done is not None:
            done(result)

    def _model_saved(self, model, saved: tasks.ModelSaved) -> None:
        """Record a finished save on the model that was saved (on the UI thread)."""
        model.thresholds = saved.thresholds
        model.model_id = saved.model_id
        model.info["model_id"] = saved.model_id
        if model is self.model:
            self.state.model.model_id = saved.model_id  # the exports' model_id column

    def save_thresholds(self):
        if self.model is None or not self.model_path:
            self.log("No model file to save thresholds into.", "warning")
            return
        t = self.state.thresholds
        if t.image is None or t.pixel is None:
            self.log("Both thresholds must be set before saving.", "warning")
            return
        model = self.model

        def done(saved: tasks.ModelSaved):
            self._model_saved(model, saved)
            if model is self.model:
                self.state.set_seeded(saved.thresholds.image, saved.thresholds.pixel,
                                      saved.thresholds.min_defect_area, saved.thresholds.uncertain_until)
            self.log(f"Thresholds saved to {saved.path} (model id {saved.model_id})", "success")
            self.status.showMessage("Thresholds saved", 5000)

        self._start_aux("Save thresholds",
                        tasks.save_model_job(model, self.model_path, t.image, t.pixel, t.min_defect_area,
                                             t.uncertain_until), done)

    def save_model_as(self, path: str):
        if self.model is None:
            self.log("No model to save.", "warning")
            return
        t = self.state.thresholds
        model = self.model

        def done(saved: tasks.ModelSaved):
            self._model_saved(model, saved)
            if model is self.model:
                self.state.set_model_path(saved.path)
            self.log(f"Model saved to {saved.path} (model id {saved.model_id})", "success")

        self._start_aux("Save model", tasks.save_model_job(model, path, t.image, t.pixel, t.min_defect_area,
                                                             t.uncertain_until), done)

    def _export_snapshot(self):
        """(state copy, colour table) for a background export: later GUI changes do not reach it."""
        state = copy.copy(self.state)  # shallow: entries/results are only read
        state.display = copy.copy(self.state.display)
        state.thresholds = copy.copy(self.state.thresholds)
        return state, lut(self.state.display.colormap)

    def export_all_pngs(self, folder: str, annotated: bool = False):
        state, table = self._export_snapshot()
        self._start_aux("Export overlays",
                        lambda progress: export.export_all_overlays(state, folder, table, progress, annotated),
                        lambda paths: self.log(f"Exported {len(paths)} overlay PNG(s)", "success"))

    def export_report(self, path: str) -> None:
        """Write the HTML report in the background (an aux job)."""
        state, table = self._export_snapshot()
        self._start_aux("Export report", lambda progress: export.export_report(state, path, table, progress),
                        lambda out: self.log(f"Wrote the report {out}", "success"))
