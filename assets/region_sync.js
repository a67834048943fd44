// Loaded first into the page's <head> by ui/page.py. Run, Queue and Run sweep wait until the
// region editor has handed its last strokes over. After a stroke, Gradio's editor exports its
// layers and sends them to the server before it says "changed"; an event that reads the editor
// in between gets the editor as it was before the stroke (on a busy machine that took long
// enough for Run to be clicked first, and the run was refused: "Mask: nothing is painted").
// The editor's change event calls studioRegionSynced (ui/wiring.py).
let regionDrawing = false;
let regionPendingSince = 0;  // when the last stroke ended and its hand-over has not come yet
const REGION_WAIT_MS = 5000;  // at most this long (a click on the canvas with no tool draws nothing)
window.studioRegionSynced = () => { regionPendingSince = 0; };
document.addEventListener("pointerdown", (event) => {
  regionDrawing = Boolean(event.target.closest && event.target.closest("#region-editor canvas"));
}, true);
document.addEventListener("pointerup", () => {
  if (regionDrawing) regionPendingSince = Date.now();
  regionDrawing = false;
}, true);
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("#run-button, #queue-button, #sweep-button");
  if (!button || !regionPendingSince || Date.now() - regionPendingSince > REGION_WAIT_MS) return;
  // Before any other handler (this script is loaded first): the click comes again once the
  // strokes are there, or the wait is over.
  event.stopImmediatePropagation();
  event.preventDefault();
  const again = () => {
    if (regionPendingSince && Date.now() - regionPendingSince <= REGION_WAIT_MS) return setTimeout(again, 50);
    regionPendingSince = 0;
    const now = document.getElementById(button.id);  // the page may have replaced the button
    if (now) now.click();
  };
  setTimeout(again, 50);
}, true);
