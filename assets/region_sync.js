// Loaded first into the page's <head> by ui/page.py. The region editor's strokes are copied into
// a hidden image, in the browser, when Run, Queue or Run sweep is clicked after something was
// painted (or undone, cleared: any pointer-up or key in the editor): this clicks the hidden "take"
// button, whose event reads the editor (ui/region_editor.py says why runs never read the editor
// itself), and holds the click until the copy is done (at most REGION_WAIT_MS), so that a run
// never gets the strokes as they were before the last one. Only then: reading the editor
// uploads its picture (background and composite, a few MB for a photo) with the strokes, so a
// copy at each stroke sent a designer's hundred strokes as hundreds of MB, past what one
// visitor may upload (STUDIO_UPLOAD_MB_PER_VISITOR) on a phone's data plan.
let regionInEditor = false;
let regionPainted = false;  // painted since the last copy
let regionCopying = 0;  // when the copy under way began (0: none)
// A run waits at most this long (a copy that failed never says so). Not less: the copy uploads the
// editor's picture twice, a few MB on a phone's or a hotel's uplink, and a run that went before it
// was refused as "nothing is painted" though the person had painted.
const REGION_WAIT_MS = 60000;
const REGION_NOTE_AFTER_MS = 700;  // a copy that takes longer says so in the run bar

function regionCopy() {
  const take = document.getElementById("region-take");
  if (!take) return false;
  regionPainted = false;
  regionCopying = Date.now();
  regionFailed = null;
  take.click();
  return true;
}
// A copy whose upload the server refused (past the visitor's upload share, no room on its disk)
// or that never reached it says nothing to the page: the page's uploads are watched here while a
// copy is under way, so that the run waits no longer and the person is told why.
let regionFailed = null;  // why the copy under way failed
const pageFetch = window.fetch;
window.fetch = async (input, init) => {
  const upload = regionCopying && String((input && input.url) || input).includes("/gradio_api/upload");
  try {
    const response = await pageFetch(input, init);
    if (upload && !response.ok) {
      const text = (await response.clone().text().catch(() => "")).slice(0, 300);
      regionFailed = `HTTP ${response.status}${text ? ": " + text : ""}`;
    }
    return response;
  } catch (error) {
    if (upload) regionFailed = "the connection to the server failed";
    throw error;
  }
};
const regionCopyUnderWay = () => regionCopying && Date.now() - regionCopying <= REGION_WAIT_MS;

// Called when a copy is done (ui/region_editor.py STROKES_TAKEN_JS).
window.studioRegionSynced = () => {
  regionCopying = 0;
};
// The strokes count only with "Edit only the painted area" ticked (a closed panel's box is not
// on the page: then copy, to be sure); unticked, a run is an ordinary edit.
const regionWanted = () => {
  const box = document.querySelector("#region-only input[type=checkbox]");
  return !box || box.checked;
};
// The editor was set afresh (another image 1, a tint): nothing painted on it yet.
const regionRestart = () => {
  regionPainted = false;
};

document.addEventListener("pointerdown", (event) => {
  regionInEditor = Boolean(event.target.closest && event.target.closest("#region-editor"));
}, true);
document.addEventListener("pointerup", () => {
  if (regionInEditor) regionPainted = true;
  regionInEditor = false;
}, true);
document.addEventListener("keyup", (event) => {  // the editor's own keys (undo, redo)
  if (event.target.closest && event.target.closest("#region-editor")) regionPainted = true;
}, true);

// The click held until the copy is done ({cancelled}), null when none waits.
let regionHeld = null;
document.addEventListener("click", (event) => {
  const button = event.target.closest && event.target.closest("#run-button, #queue-button, #sweep-button");
  if (button && regionHeld) {  // a click already waits for this copy: a second one is no second run
    event.stopImmediatePropagation();
    event.preventDefault();
    return;
  }
  if (button) regionNote(false);  // the last try's note: this one answers for itself
  if (!button || !((regionPainted && regionWanted()) || regionCopyUnderWay())) return;
  if (!regionCopyUnderWay() && !regionCopy()) return;  // no editor on the page: nothing to copy
  // Before any other handler (this script is loaded first): the click comes again once the
  // strokes are copied (and again held if more was painted meanwhile), or the wait is over.
  event.stopImmediatePropagation();
  event.preventDefault();
  const held = {cancelled: false};
  regionHeld = held;
  const again = () => {
    if (held.cancelled) return;  // Cancel or Escape: the copy goes on, the click is dropped
    if (regionCopying && regionFailed) {  // no run: it would be refused as "nothing is painted"
      regionCopying = 0;
      regionPainted = true;  // the next Run tries again
      regionHeld = null;
      return regionNote(true, `The painted area could not be sent (${regionFailed}). Nothing was run; try Run again.`);
    }
    if (regionCopyUnderWay()) {
      if (Date.now() - regionCopying > REGION_NOTE_AFTER_MS) regionNote(true);
      return setTimeout(again, 50);
    }
    regionCopying = 0;
    regionHeld = null;
    regionNote(false);
    const now = document.getElementById(button.id);  // the page may have replaced the button
    if (now) now.click();
  };
  setTimeout(again, 50);
}, true);
// Until the run starts Stop has nothing to stop: the note's Cancel, or Escape, drops the held
// click instead (a slow uplink could otherwise only be waited out, up to REGION_WAIT_MS).
function regionCancel() {
  if (!regionHeld) return false;
  regionHeld.cancelled = true;
  regionHeld = null;
  regionNote(true, REGION_CANCELLED);
  return true;
}
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && regionCancel()) event.stopImmediatePropagation();  // not page.js's Stop
}, true);
document.addEventListener("click", (event) => {
  if (event.target.closest && event.target.closest("#region-cancel")) regionCancel();
});
// While a run waits for the painted area to reach the server, or why it could not: a line under
// the run bar (until the next Run).
const REGION_NOTE = "Sending the painted area to the server: the run starts as soon as it is there.";
const REGION_CANCELLED = "Cancelled before the run started: nothing was run.";
function regionNote(shown, text = REGION_NOTE) {
  let note = document.getElementById("region-note");
  if (!shown) return note && note.remove();
  const bar = document.getElementById("run-bar");
  if (!bar) return;
  if (!note) {
    note = document.createElement("div");
    note.id = "region-note";
    bar.appendChild(note);
  }
  const failed = text !== REGION_NOTE && text !== REGION_CANCELLED;
  note.setAttribute("role", failed ? "alert" : "status");
  if (note.firstChild && note.firstChild.textContent === text) return;  // shown already (every 50 ms)
  note.textContent = text;
  if (text !== REGION_NOTE) return;
  const cancel = document.createElement("button");
  cancel.id = "region-cancel";
  cancel.type = "button";
  cancel.textContent = "Cancel";
  note.append(" ", cancel);
}

// The picture the editor shows: image 1, or a restored mask tinted on it, at most 1536 pixels a
// side. The editor uploads its picture twice (background and composite) each time its strokes
// are copied: at a phone photo's full size that is tens of MB a copy. The strokes are scaled
// to image 1's size for the run (backend/region.py).
const EDITOR_MAX_SIDE = 1536;
async function editorPicture(image) {
  const plain = {background: image, layers: [], composite: image};
  try {
    const picture = new Image();
    picture.src = image.url;
    await picture.decode();
    const scale = EDITOR_MAX_SIDE / Math.max(picture.naturalWidth, picture.naturalHeight);
    if (!(scale < 1)) return plain;
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(picture.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(picture.naturalHeight * scale));
    canvas.getContext("2d").drawImage(picture, 0, 0, canvas.width, canvas.height);
    const smaller = {...image, url: canvas.toDataURL("image/png"), size: null};
    return {background: smaller, layers: [], composite: smaller};
  } catch (error) {
    return plain;  // shown as it is
  }
}

// What the editor shows: image 1 (its file's path: Gradio names files by their content) and the
// tint over it, if any. Image 1 can be set again to the same file (the server's copy of it, by an
// upload's check that moved it, a restore); the editor is set afresh, which drops its strokes, only
// for another picture (on a busy server such a copy came back after the first strokes and wiped them).
// Each returns the editor's new value and the copied strokes' (undefined: unchanged).
let editorImage = null;
let editorTint = null;
let panelToOpen = false;
const UNCHANGED = [undefined, undefined];
window.studioEditorFollow = async (image) => {
  if (!image) {
    editorImage = editorTint = null;
    regionRestart();
    return [null, null];
  }
  if (image.path === editorImage) return UNCHANGED;
  editorImage = image.path;
  editorTint = null;
  regionRestart();
  return [await editorPicture(image), null];
};
window.studioEditorTint = async (tint, image) => {
  if (tint) {
    if (tint.path === editorTint) return UNCHANGED;
    editorTint = tint.path;
    if (image) editorImage = image.path;
    panelToOpen = true;
    regionRestart();
    return [await editorPicture(tint), null];
  }
  if (!editorTint || !image) return UNCHANGED;
  editorTint = null;  // the restored mask was dropped (image 1 added again): plain image 1
  editorImage = image.path;
  regionRestart();
  return [await editorPicture(image), null];
};
// The region panel opens once for each tint shown (opening it makes the editor upload its picture).
window.studioEditorOpenPanel = () => {
  const open = panelToOpen;
  panelToOpen = false;
  return open;
};
