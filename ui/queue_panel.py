"""The Queue panel's components (its events: ui/wiring_queue.py; its handlers: ui/queue_view.py)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ui.components import kept_in_browser


@dataclass
class QueuePanel:
    gallery: gr.Gallery  # one card per queued run, in queue order
    detail: gr.Markdown  # the picked run's state in full, or what the last Queue did
    open: gr.Button
    cancel: gr.Button
    clear: gr.Button
    ids: gr.State  # the job ids, in the gallery's order
    picked: gr.State  # the picked job's id
    seen: gr.State  # the board's version the panel shows (a poll with nothing new changes nothing)
    timer: gr.Timer  # polls while a queued run is unfinished
    token: gr.BrowserState  # this browser's queue (backend/jobs.py): kept across reloads


def queue_panel() -> QueuePanel:
    with gr.Accordion("Queue", open=True, elem_id="queue-panel"):
        gr.Markdown("Runs added with **Queue** (or Run while a run goes) run on the server one after "
                    "another, even if you close this page; each lands in History when it is done.",
                    elem_classes=["hint"])
        # Shown once there is a queued run (no empty frame on a first visit).
        gallery = gr.Gallery(label="Queued runs", columns=3, height=220, elem_id="jobs", interactive=False,
                             allow_preview=False, fit_columns=False, object_fit="cover", format="jpeg",
                             visible=False)
        detail = gr.Markdown("", elem_id="job-detail")
        with gr.Row():
            # Enabled once a run that can be opened (done) or cancelled (unfinished) is picked.
            open_button = gr.Button("Open this run", size="sm", elem_id="job-open", interactive=False)
            cancel = gr.Button("Cancel this run", size="sm", elem_id="job-cancel", interactive=False)
            # Enabled while there is a finished run to clear (queue_view.clear_button).
            clear = gr.Button("Clear finished", size="sm", elem_id="jobs-clear", interactive=False)
    return QueuePanel(
        gallery=gallery, detail=detail, open=open_button, cancel=cancel, clear=clear, ids=gr.State([]),
        picked=gr.State(None), seen=gr.State(-1), timer=gr.Timer(1, active=False),
        # Only a random token: the runs themselves stay on the server.
        token=kept_in_browser("", "flux2-studio-queue"),
    )
