"""The Lab on many photos: run the queued variants over a folder and compare them by their mean and spread.

Why: a prior that wins on one photo may lose on the next; choosing one on a folder's mean PSNR, with its
spread, is choosing on evidence. Each photo of each variant goes through the batch's own path
(:func:`rwgui.batch.variant_jobs` plans the same jobs ``rwgui-restore TASK FOLDER -o OUT --config ...`` would,
:func:`rwgui.batch.run_variants` runs them with the inline executor), so a photo restores here exactly as it
does on the command line; ground truths are matched by name, as the batch matches them.

Threading: the jobs run in a :class:`FolderRunner` on a QThread of its own (one photo at a time: the engine
takes every core or the device), rows come back as signals to :class:`LabFolderDialog` in the GUI thread. Stop
sets the :class:`~rwgui.core.engine.RunControl` the running photo's loop checks before every step, and no
photo starts after it; closing the dialog stops and waits for the thread, it is never terminated.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..batch import Job, Row, run_variants, summarise_variants, variant_jobs
from ..core.config import RunConfig
from ..core.engine import RunControl, describe_error
from ..core.vocabulary import JobStatus
from .worker import new_run_thread

__all__ = ["FolderRunner", "LabFolderDialog", "COLUMNS"]

COLUMNS = ("Variant", "PSNR mean ± std", "PSNR min – max", "Photos", "Failed", "Mean time", "Mean stop it.")


class FolderRunner(QObject):
    """Runs the planned jobs on its thread; never touches a widget."""

    photo_started = Signal(int, str, str)  # job index, variant, photo name
    row_done = Signal(object)  # Row (with its variant)
    finished = Signal(bool)  # stopped
    failed = Signal(str)

    def __init__(self, jobs: list[Job]) -> None:
        super().__init__()
        self.jobs = jobs
        self.control = RunControl()

    def stop(self) -> None:
        self.control.stop()

    @Slot()
    def run(self) -> None:
        stopped = False
        index = {id(job): k for k, job in enumerate(self.jobs)}

        def started(job: Job) -> None:
            self.photo_started.emit(index[id(job)], job["variant"], Path(job["photo"]).name)

        try:
            run_variants(self.jobs, self.row_done.emit, self.control, started)
        except KeyboardInterrupt:  # the batch's way of saying it was stopped
            stopped = True
        except Exception as exc:  # a folder that vanished, a disk that filled: end cleanly, say why
            traceback.print_exc()
            self.failed.emit(describe_error(exc))
        app = QCoreApplication.instance()
        if app is not None:
            self.moveToThread(app.thread())  # so that the GUI thread may delete this object safely
        self.finished.emit(stopped)


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


class LabFolderDialog(QDialog):
    """Choose a folder (and one of ground truths), run every queued variant on each photo, and read a table of
    each variant's mean ± std PSNR over the photos, their number and the failures."""

    run_finished = Signal()  # the table holds the run's final numbers (tests wait on it)

    def __init__(self, variants: list[tuple[str, RunConfig]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Lab — the queued variants on a folder")
        self.variants = list(variants)
        self.rows: list[Row] = []
        self.summary: list[dict[str, Any]] = []
        self._thread: QThread | None = None
        self._runner: FolderRunner | None = None
        self._total = 0
        self._out: str | None = None  # a temporary folder for the outputs, removed when the dialog closes
        self._build()
        self._update_buttons()

    # ----- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText("a folder of damaged photos")
        self.gt_edit = QLineEdit(self)
        self.gt_edit.setPlaceholderText("optional: undamaged photos of the same names, for PSNR")
        form = QFormLayout()
        for label, edit, title in (
            ("Photos", self.folder_edit, "Folder of damaged photos"),
            ("Ground truths", self.gt_edit, "Folder of ground truths (same names)"),
        ):
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            browse = QPushButton("Browse…", self)
            browse.clicked.connect(lambda _=False, e=edit, t=title: self._browse(e, t))
            row.addWidget(browse)
            form.addRow(label, row)
            edit.textChanged.connect(self._update_buttons)
        names = "\n".join(f"• {label}" for label, _ in self.variants) or "(none)"
        self.variants_label = QLabel(f"{len(self.variants)} variants, each on every photo:\n{names}", self)
        self.run_button = QPushButton("Run on the folder", self)
        self.run_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        self.progress_label = QLabel("Choose a folder of photos.", self)
        self.progress_label.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # numbers never cut or wrapped
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.note_label = QLabel("", self)
        self.note_label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.variants_label)
        lay.addLayout(buttons)
        lay.addWidget(self.progress_label)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.note_label)
        self.resize(900, 420)

    def _browse(self, edit: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title, edit.text())
        if folder:
            edit.setText(folder)

    # ----- the run ------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._thread is not None

    def start(self) -> bool:
        """Plan every variant's jobs through the batch and run them on a thread; False (and why, in the
        progress line) when there is nothing to run."""
        if self.is_running() or not self.variants:
            return False
        folder, gt = self.folder_edit.text().strip(), self.gt_edit.text().strip() or None
        self._clean_outputs()
        self._out = tempfile.mkdtemp(prefix="rwgui-lab-folder-")
        try:
            jobs, unstartable = variant_jobs(self.variants, folder, Path(self._out), gt)
        except Exception as exc:  # no photos there, a name clash: the batch's words
            self.progress_label.setText(f"Cannot run on '{folder}': {describe_error(exc)}")
            return False
        self.rows = list(unstartable)
        self._total = len(jobs) + len(unstartable)
        self._refresh()
        runner = FolderRunner(jobs)
        thread = new_run_thread(runner, "rwgui-lab-folder", runner.run, runner.finished)
        q = Qt.ConnectionType.QueuedConnection
        runner.photo_started.connect(self._on_photo_started, q)
        runner.row_done.connect(self._on_row, q)
        runner.failed.connect(self._on_failed, q)
        runner.finished.connect(self._on_finished, q)
        self._thread, self._runner = thread, runner
        self.progress_label.setText(f"Starting: {len(jobs)} runs ({len(self.variants)} variants × the photos)…")
        self._update_buttons()
        thread.start()
        return True

    def stop(self) -> None:
        """Stop the running photo after its step; no other photo starts."""
        if self._runner is not None:
            self._runner.stop()
            self.progress_label.setText("Stopping after this step…")

    def shutdown(self) -> None:
        """Stop and wait for the thread (the dialog or the Lab closing)."""
        thread = self._thread
        if thread is not None and self._runner is not None:
            self._runner.stop()
            thread.wait()
        self._thread, self._runner = None, None
        self._clean_outputs()

    def _clean_outputs(self) -> None:
        if self._out is not None:
            shutil.rmtree(self._out, ignore_errors=True)
            self._out = None

    @Slot(int, str, str)
    def _on_photo_started(self, index: int, variant: str, photo: str) -> None:
        done = len(self.rows)
        self.progress_label.setText(f"Run {done + 1} of {self._total}: {variant} on {photo}…")

    @Slot(object)
    def _on_row(self, row: Row) -> None:
        self.rows.append(row)
        self._refresh()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.progress_label.setText(f"The folder run failed: {message}")

    @Slot(bool)
    def _on_finished(self, stopped: bool) -> None:
        if self._thread is not None:
            self._thread.wait()  # it quits right after this signal was sent
        self._thread, self._runner = None, None
        failed = sum(r["status"] == JobStatus.FAILED for r in self.rows)
        head = "Stopped" if stopped else "Done"
        self.progress_label.setText(
            f"{head}: {len(self.rows)} of {self._total} runs finished, {failed} failed."
            + (" The rest did not run." if stopped else "")
        )
        self._refresh()
        self._update_buttons()
        self.run_finished.emit()

    # ----- the table ----------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """One row per variant: the batch's rows summarised (:func:`rwgui.batch.summarise_variants`)."""
        self.summary = summarise_variants(self.rows)
        t = self.table
        t.setRowCount(len(self.summary))
        no_gt = False
        for i, s in enumerate(self.summary):
            if s["psnr_n"]:
                std = f" ± {_fmt(s['psnr_std'])}" if s["psnr_std"] is not None else " (one photo)"
                mean = f"{_fmt(s['psnr_mean'])}{std} dB"
                span = f"{_fmt(s['psnr_min'])} – {_fmt(s['psnr_max'])} dB"
            else:
                no_gt = no_gt or s["n"] > 0
                mean = span = "unavailable"
            secs = s["seconds_mean"]
            cells = (
                s["variant"],
                mean,
                span,
                f"{s['n']} of {s['photos']}",
                str(s["failed"]) + (f" (+{s['stopped']} stopped)" if s["stopped"] else ""),
                "—" if secs is None else f"{secs:.1f} s",
                _fmt(s["stop_iteration_mean"], 0),
            )
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                t.setItem(i, j, item)
        self.note_label.setText(
            "PSNR is unavailable without ground truths (undamaged photos of the same names): compare the mean "
            "time and the mean stop iteration, and the outputs by eye."
            if no_gt
            else "PSNR: mean ± standard deviation over the photos restored (n − 1), and its range."
        )

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.run_button.setEnabled(not running and bool(self.variants) and bool(self.folder_edit.text().strip()))
        self.stop_button.setEnabled(running)
        self.folder_edit.setEnabled(not running)
        self.gt_edit.setEnabled(not running)

    def closeEvent(self, ev) -> None:
        self.shutdown()
        super().closeEvent(ev)

    def done(self, result: int) -> None:  # Esc or a close button: stop and wait too
        self.shutdown()
        super().done(result)
