// Loaded into the page's <head> by ui/page.py: keyboard shortcuts and accessible names.
let runClickedAt = 0;  // when Run was last clicked (by mouse, keyboard or Ctrl+Enter)
// Escape stops the run. Stop is enabled by the server's answer to Run: on a busy server an
// Escape can come first, and then stops the run as soon as Stop is enabled (within 15 s of Run).
const stopSoon = (stop) => {
  if (!stop.disabled) { stop.click(); return; }
  if (Date.now() - runClickedAt > 15000) return;
  const until = runClickedAt + 15000;
  const poll = setInterval(() => {  // the page may replace the button: look it up each time
    const now = document.querySelector("#stop-button");
    if (now && !now.disabled) { clearInterval(poll); now.click(); }
    else if (Date.now() > until) clearInterval(poll);
  }, 100);
};
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    const run = document.querySelector("#run-button");
    if (run) { event.preventDefault(); run.click(); }
  } else if (event.key === "Escape") {
    const stop = document.querySelector("#stop-button");
    if (stop && stop.offsetParent !== null) stopSoon(stop);
  }
});
// Names a screen reader can tell apart, kept as Gradio re-renders: "Remove LoRA 2" for a "✕",
// "LoRA 2 scale" and "LoRA 2 on" for a row's "scale" and "on", "Upload image 2" for a slot.
const nameControls = () => {
  const named = [
    ["button[id^='lora-remove-']", "lora-remove-", (n) => "Remove LoRA " + n, ""],
    ["[id^='lora-scale-']", "lora-scale-", (n) => "LoRA " + n + " scale", "input"],
    ["[id^='lora-on-']", "lora-on-", (n) => "LoRA " + n + " on", "input"],
    // Gradio names every empty image's upload area alike; say which slot it fills, and how: after
    // its clipboard button the area pastes (and takes no drop) until its upload button is pressed.
    ["[id^='reference-']", "reference-",
     (n, area) => (area.hasAttribute("aria-dropeffect") ? "Upload image " : "Paste image ") + n,
     "button.upload-container"],
    // With its copy button, Gradio's textbox no longer ties its label to the field.
    ["#seed-used", "seed-used", () => "Seed used", "input"],
  ];
  for (const [selector, prefix, label, inner] of named) {
    for (const owner of document.querySelectorAll(selector)) {
      for (const target of inner ? owner.querySelectorAll(inner) : [owner]) {
        const name = label(owner.id.slice(prefix.length), target);
        if (target.getAttribute("aria-label") !== name) {
          target.setAttribute("aria-label", name);
          if (!inner) target.title = name;
        }
      }
    }
  }
};
// Gradio's empty gallery and slider are a bare <div aria-label="Empty value">, which no screen
// reader may read (a name needs a role): say what will come there (style.css shows the same text).
const EMPTY_NAMES = {
  results: "No results yet: your edited images appear here.",
  compare: "Nothing to compare yet.",
  history: "No past runs yet: finished runs are kept here, in this browser.",
  "lora-library": "No LoRAs yet: the ones you run with, and the server's LoRA folder, appear here.",
  "code-client": "After a run: the Python that runs it again through this app.",
  "code-fal": "After a run: the Python that runs it on fal directly, with your own key.",
  "code-recipe": "After a run: its recipe, every setting as JSON.",
};
const nameEmptyFrames = () => {
  for (const [id, name] of Object.entries(EMPTY_NAMES)) {
    const empty = document.querySelector("#" + id + " > .empty");
    if (empty && empty.getAttribute("aria-label") !== name) {
      empty.setAttribute("role", "img");
      empty.setAttribute("aria-label", name);
    }
  }
};
// The local speed presets this server cannot run (the field's classes: ui/form.py) are shown
// disabled; the field's info says why ("fast and fastest need an NVIDIA GPU with fp8 …").
const disableUnavailableSpeeds = () => {
  const field = document.querySelector("#local-speed");
  if (!field) return;
  for (const name of field.classList) {
    if (!name.startsWith("unavailable-")) continue;
    const input = field.querySelector(`input[value="${name.slice("unavailable-".length)}"]`);
    if (input && !input.disabled) {
      input.disabled = true;
      input.closest("label")?.setAttribute("title", "Not on this server (see above)");
    }
  }
};
// The instruction's length, shown under its help text as it is typed once it passes 80 % of its limit (the
// field's class "max-chars-N": the request model's), and how far over it is: a long paste was
// only refused at Run. Characters as the server counts them (code points, so an emoji is one).
const COUNT_FROM = 0.8;
let promptPoll = null;
const countPrompt = (area) => {
  const field = area.closest("#prompt");
  const limitClass = field && [...field.classList].find((name) => name.startsWith("max-chars-"));
  if (!limitClass) return;
  const limit = Number(limitClass.slice("max-chars-".length));
  const length = [...area.value].length;
  let note = field.querySelector("#prompt-count");
  if (length < COUNT_FROM * limit) { note?.remove(); area.removeAttribute("aria-describedby"); return; }
  // Not a live region (a screen reader would read the count out at every key): the box is
  // described by it, and a refused run is announced with the status line.
  area.setAttribute("aria-describedby", "prompt-count");
  if (!note) {
    note = document.createElement("div");
    note.id = "prompt-count";
    // An example, a restored run or a preset sets the text without an input event: while the
    // count shows, it is read again now and then (so it never speaks of a text that is gone).
    promptPoll ??= setInterval(() => {
      const now = document.querySelector("#prompt textarea");
      if (now && document.querySelector("#prompt-count")) countPrompt(now);
      else { clearInterval(promptPoll); promptPoll = null; }
    }, 400);
    // Under the field's help text, at its top: under the box, a long text pushed it off the screen.
    (area.closest(".input-container") || area).insertAdjacentElement("beforebegin", note);
  }
  const over = length - limit;
  note.textContent = over > 0
    ? `${length} characters: ${over} over the ${limit} an instruction may have`
    : `${length} of ${limit} characters`;
  note.classList.toggle("over", over > 0);
};
document.addEventListener("input", (event) => {
  if (event.target.matches?.("#prompt textarea")) countPrompt(event.target);
});
new MutationObserver(() => { nameControls(); nameEmptyFrames(); disableUnavailableSpeeds(); }).observe(
  document, {childList: true, subtree: true, attributes: true, attributeFilter: ["id", "aria-label"]},
);
// The run bar: while Run reads "Running", it also shows the status line's step ("step 12/28",
// through data-step and style.css), and its progress as Run's background; during a sweep, the
// cells done ("1/4 cells"), its progress the whole sweep's (the running cell's step counted in;
// with several cells running at once, the status line's "40% of the sweep").
// On a phone, a click on Run scrolls the status and the results into view (the form is long,
// the results are below it).
const RUNNING = "Running";
const runProgress = (text, narrow) => {
  const step = /step (\d+) of (\d+)/i.exec(text);
  const sweep = /Sweep: (\d+) of (\d+) cells done/i.exec(text);
  if (sweep) {
    const whole = /(\d+)% of the sweep/.exec(text);
    const done = Number(sweep[1]) + (step ? step[1] / step[2] : 0);
    const percent = whole ? Number(whole[1]) : Math.round((100 * done) / sweep[2]);
    return {label: sweep[1] + "/" + sweep[2] + (narrow ? "" : " cells"), percent};
  }
  if (!step) return null;
  // On a phone, "Running · 12/28" (or a sweep's "3/16") on one line.
  return {label: (narrow ? "" : "step ") + step[1] + "/" + step[2], percent: Math.round((100 * step[1]) / step[2])};
};
const mirrorStep = () => {
  const run = document.querySelector("#run-button");
  const status = document.querySelector("#status");
  if (!run || !status) return;
  const narrow = window.matchMedia("(max-width: 480px)").matches;
  const shown = run.innerText.trim().startsWith(RUNNING) ? runProgress(status.innerText, narrow) : null;
  if (shown && (run.dataset.step !== shown.label || run.style.getPropertyValue("--progress") !== shown.percent + "%")) {
    run.dataset.step = shown.label;
    run.style.setProperty("--progress", shown.percent + "%");
  }
  else if (!shown && run.dataset.step !== undefined) delete run.dataset.step;
};
// A screen reader hears how a run ends (done, stopped, refused, failed) and what the status line
// says between runs, from a live region of its own: the status line is not one, and making it one
// would read out every step of every run ("Intermediate result (step 4 of 28)", queue places).
// The page's first line ("Ready.") is on screen already and is not read out.
let announced = null;
const announceStatus = () => {
  const status = document.querySelector("#status");
  if (!status) return;
  let region = document.getElementById("status-announcer");
  if (!region) {  // in the DOM before its first message, which some screen readers need
    region = document.createElement("div");
    region.id = "status-announcer";
    region.setAttribute("role", "status");
    region.style.cssText = "position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);"
      + "white-space:nowrap;";
    document.body.appendChild(region);
  }
  // The line itself, not Gradio's timer over it ("0.0s" while an event runs), without a sweep
  // cell's step: each cell is said as it starts, not each of its steps.
  const text = (status.querySelector("[data-testid=markdown]") || status).innerText.trim()
    .replace(/ · step \d+ of \d+$/, "");
  if (announced === null) { if (text) announced = text; return; }
  if (!text || text === announced || /step \d+ of \d+|position \d+|next in line/i.test(text)) return;
  announced = text;
  region.textContent = text;
};
new MutationObserver(() => { mirrorStep(); announceStatus(); }).observe(
  document, {childList: true, subtree: true, characterData: true});
// The run bar's height, for the room the page keeps under its last line on a phone (frame.css).
const barHeight = new ResizeObserver(([entry]) => document.documentElement.style.setProperty(
  "--run-bar-height", Math.ceil(entry.target.getBoundingClientRect().height) + "px"));
let measuredBar = null;
new MutationObserver(() => {
  const bar = document.querySelector("#run-bar");
  if (bar && bar !== measuredBar) { measuredBar = bar; barHeight.observe(bar); }
}).observe(document, {childList: true, subtree: true});
const QUEUED_INSTEAD = "A run is going: Run adds this one to the Queue (below the results) instead.";
const sayQueued = (bar) => {
  let note = document.querySelector("#run-note");
  if (!note) {
    note = document.createElement("div");
    note.id = "run-note";
    note.setAttribute("role", "status");
    bar.appendChild(note);
  }
  note.textContent = QUEUED_INSTEAD;
  clearTimeout(note.hideTimer);
  note.hideTimer = setTimeout(() => note.remove(), 6000);
};
// A new try answers for itself: the warnings of the last refused or failed one are closed first
// (Gradio stacks a second warning under the first, "Warning (2)": on a phone a stack covers the
// top of the page, where the fields it names are). An example fills the whole form: a warning
// about the form as it was ("add at least one image") would then say what is no longer so.
document.addEventListener("click", (event) => {
  if (!event.target.closest || !event.target.closest("#run-button, #queue-button, #sweep-button, #examples button")) {
    return;
  }
  for (const close of document.querySelectorAll(".toast-body.warning .toast-close, .toast-body.error .toast-close")) {
    close.click();
  }
}, true);
document.addEventListener("click", (event) => {
  const run = event.target.closest && event.target.closest("#run-button");
  if (!run) return;
  runClickedAt = Date.now();
  // Read before the click's own event answers: a run (or a sweep) is already going. The click
  // goes no further (no second run takes over the results) and queues the run instead; the bar
  // says so, and the Queue's own answer (queued, or why not) follows.
  if (run.innerText.trim().startsWith(RUNNING)) {
    event.stopPropagation();
    event.preventDefault();
    const queue = document.querySelector("#queue-button");
    if (queue) queue.click();
    const bar = document.querySelector("#run-bar");
    if (bar) sayQueued(bar);
  } else if (window.matchMedia("(max-width: 768px)").matches) {
    const status = document.querySelector("#status");
    if (status) window.scrollTo({top: window.scrollY + status.getBoundingClientRect().top - 8});  // a little room above
  }
}, true);  // capture: before Gradio's own handler
// Buttons whose effect lands elsewhere on the page (Run sweep at the foot of the form, the
// History's and the sweep's buttons below the results, which on a phone are a screen or more
// from the form): once the click has its answer, the page brings that place into view, unless
// it is already there. An entry's `answer` waits for the status line to change (the answer
// says where to look: a refused sweep, for one, is explained on the status line); without it
// the place is brought into view at once.
// On a phone Gradio's toasts sit at the foot of the screen, above the run bar (assets/frame.css
// moved them from the top, where they covered the form's first fields): a place is in view when
// its top is on screen above them and the bar (the bottom 120 px); it is brought to the top.
const screenFoot = () => {
  const tops = [...document.querySelectorAll(".toast-body")].map((t) => t.getBoundingClientRect().top);
  return Math.min(window.innerHeight - 120, ...tops.filter((t) => t > window.innerHeight / 2));
};
const inView = (element) => {
  const box = element.getBoundingClientRect();
  return box.top >= 0 && box.top < screenFoot();
};
const bringIntoView = (selector) => {
  const element = document.querySelector(selector);
  if (element && !inView(element)) {
    window.scrollTo({top: window.scrollY + element.getBoundingClientRect().top - 8});
  }
};
// The first field the form's check marked, once the status says the form was refused (a mark
// left from an earlier try does not move the page while a run goes).
const firstMarked = (status) => (status.includes("check the form") && document.querySelector(".field-error")
                                 ? ".field-error" : undefined);
// An `answer` gives the place to bring into view, null for none, or undefined to wait for
// the status line's next change (at most 5 s after the click).
const EFFECTS = [
  // "⚙️ Sweep: 0 of 4 cells done, …" once the sweep started; otherwise the status says why not,
  // and the first field it marks is where to act (image 1, at the top of the page on a phone).
  {button: "#sweep-button",
   answer: (status) => (status.includes("Sweep:") ? "#sweep-results" : firstMarked(status) || "#status")},
  // A run without a fal key, or with one fal refused (the box is then marked): the key box (a
  // phone's Run shows the status; the box is at the top of the page, or below the form). A run
  // or a queued one refused for the form: its first marked field (on a phone, a screen above).
  {button: "#run-button",
   answer: (status) => (status.startsWith("🔑") || document.querySelector("#own-key.field-error") ? "#own-key"
                        : firstMarked(status))},
  {button: "#queue-button", answer: firstMarked},
  {button: "#history-restore, #sweep-restore, #recipe-apply, #job-open", answer: () => "#status"},
  {button: "#history-compare", place: "#compare-panel"},
  // An example fills the images above it: on a phone, out of view.
  {button: "#use-as-input, #add-as-reference, #sweep-use-input, #examples button", place: "#reference-1"},
  {button: "#reuse-seed", place: "#seed"},
];
document.addEventListener("click", (event) => {
  const effect = event.target.closest && EFFECTS.find((e) => event.target.closest(e.button));
  const status = document.querySelector("#status");
  if (!effect || !status) return;
  if (effect.place) return setTimeout(() => bringIntoView(effect.place), 100);
  const before = status.innerText.trim();
  const clickedAt = Date.now();
  const answered = () => {
    const now = status.innerText.trim();
    const place = effect.answer(now);
    if ((now === before || place === undefined) && Date.now() - clickedAt < 5000) return setTimeout(answered, 100);
    if (!place) return;
    bringIntoView(place);
    // Again once a toast that came with the answer is there (and a mark that came after it).
    setTimeout(() => bringIntoView(effect.answer(status.innerText.trim()) || place), 500);
  };
  setTimeout(answered, 100);
}, true);
// Ctrl/Cmd+V with an image on the clipboard (a screenshot, an image copied in another app) puts it
// in the first free image slot, as an upload there would: Gradio's own paste takes a click on a
// slot's clipboard button, another on "Paste from clipboard" and the browser's permission. In a
// text field a paste that has text is the field's; an image alone (no text) would paste nothing
// there, so it goes to a slot too. With every shown slot full, a note under them says so.
const FULL_SLOTS = "Every image slot is full: remove an image first, then paste again.";
const sayImageNote = (text) => {
  const hint = document.querySelector("#references-hint");
  if (!hint) return;
  let note = document.querySelector("#image-note");
  if (!note) {
    note = document.createElement("div");
    note.id = "image-note";
    note.setAttribute("role", "status");
    hint.insertAdjacentElement("afterend", note);
  }
  note.textContent = text;
  clearTimeout(note.hideTimer);
  note.hideTimer = setTimeout(() => note.remove(), 10000);
};
// A slot given a picture is not free until it shows (at most UPLOAD_WAIT ms), then free again once removed.
const UPLOAD_WAIT = 10000;
const uploading = (slot) => Date.now() - slot.dataset.pastedAt < UPLOAD_WAIT;
const markPasted = (slot) => {
  slot.dataset.pastedAt = Date.now();
  const shown = setInterval(() => {
    if (slot.querySelector("img") || !uploading(slot)) {
      delete slot.dataset.pastedAt;
      clearInterval(shown);
    }
  }, 200);
};
// Through the slot's own file input (a slot set to wait for Gradio's "Paste from clipboard" has
// none: such a slot is not free for a paste, and a drop on it says so).
const putInSlot = async (slot, file) => {
  const input = slot.querySelector("input[type=file]");
  if (!input) return sayImageNote("This slot waits for its clipboard paste: press its upload button first.");
  const files = new DataTransfer();
  files.items.add(file);
  input.files = files.files;
  markPasted(slot);
  input.dispatchEvent(new Event("change", {bubbles: true}));
};
document.addEventListener("paste", async (event) => {
  const data = event.clipboardData;
  const images = data ? [...data.files].filter((file) => file.type.startsWith("image/")) : [];
  const target = event.target.closest ? event.target : event.target.parentElement;
  if (!images.length || !target || target.closest("#region-editor")) return;
  const editable = target.closest("input, textarea, [contenteditable=true]");
  if (editable && data.types.includes("text/plain")) return;
  event.preventDefault();
  // Shown, without a picture, taking a file, and not given one by a paste whose upload is on its way.
  const free = [...document.querySelectorAll("[id^='reference-']")].filter((slot) => slot.offsetParent !== null
    && !slot.querySelector("img") && slot.querySelector("input[type=file]") && !uploading(slot));
  if (!free.length) return sayImageNote(FULL_SLOTS);
  for (const [i, image] of images.slice(0, free.length).entries()) await putInSlot(free[i], image);
  if (images.length > free.length) sayImageNote(`${images.length - free.length} of the pasted images did not fit: `
                                               + "every image slot is full.");
  else document.querySelector("#image-note")?.remove();
});
// A picture dragged onto an image slot goes into that slot, replacing what it held: the browser's
// drag carries the picture's address, not a file, and Gradio's slots take only files (on a slot
// with a picture such a drop removed it). This page's own pictures (a result, a History card, a
// sweep cell) and data: addresses are read here; another site's is fetched by the server
// (ui/dropped.py: https only, public addresses, an upload's limits) and comes back as a file.
// Either way it goes in as an upload; when nothing can be had, a note says what to do, and the
// slot keeps what it holds.
const NO_PICTURE = "Only image files and pictures can be dropped here: save the picture and drop the file, "
  + "or copy it and press Ctrl/Cmd+V.";
const NOT_FETCHED = "The picture could not be fetched (the message says why): save it and drop the file, "
  + "or copy it and press Ctrl/Cmd+V.";
const notFetched = (drop) => drop  // the slot and the site, where the refused drop is known
  ? `Image ${drop.slot}: the picture from ${new URL(drop.address).host} could not be fetched (the message says `
    + "why); the slot keeps what it held. Save the picture and drop the file, or copy it and press Ctrl/Cmd+V."
  : NOT_FETCHED;
const slotUnder = (event) => event.target.closest && event.target.closest("[id^='reference-']");
const fileless = (event) => event.dataTransfer && !event.dataTransfer.types.includes("Files");
const droppedAddress = (transfer) => {
  try {
    const url = new URL(transfer.getData("text/uri-list").split("\n")[0].trim(), location.href);
    return ["https:", "http:", "data:"].includes(url.protocol) ? url : null;
  } catch { return null; }
};
const fileName = (url) => {  // the address's last part, as a file name ("" for none)
  try { return decodeURIComponent(url.pathname.split("/").pop()); } catch { return ""; }
};
const blobAt = async (url) => {  // what `url` serves, or null when it answers nothing
  const response = await fetch(url).catch(() => null);
  return response && response.ok ? await response.blob().catch(() => null) : null;
};
const pictureAt = async (url, name) => {  // a File, or null when `url` holds no picture
  const blob = await blobAt(url);
  if (!blob || !blob.type.startsWith("image/")) return null;
  return new File([blob], name || `picture.${blob.type.split("/")[1].split("+")[0]}`, {type: blob.type});
};
window.studioDrop = (() => {
  // Dropped addresses: waiting for their fetch, then being fetched. A refusal (from Gradio's
  // preparation of the inputs, or the handler's) does not say which drop it answers: with one
  // drop in flight it is that one, with more the note stays general.
  const waiting = [], fetching = [];
  return {
    ask(slot, url) {
      waiting.push({slot: Number(slot.id.split("-").pop()), address: url.href});
      sayImageNote(`Fetching the picture from ${url.host}…`);
      document.querySelector("#dropped-fetch")?.click();
    },
    take() {  // each click takes the drop that made it (the event's trigger mode is "multiple")
      const drop = waiting.shift() || null;
      if (drop) fetching.push(drop);
      const name = drop && fileName(new URL(drop.address));
      return [drop && {path: drop.address, orig_name: name || "picture", meta: {_type: "gradio.FileData"}}, drop];
    },
    async put(fetched, drop) {  // the server names the picture's type (its file is named by its address)
      const at = fetching.findIndex((d) => drop && d.slot === drop.slot && d.address.slice(0, 200) === drop.address);
      if (at >= 0) fetching.splice(at, 1);
      const slot = drop && document.querySelector(`#reference-${drop.slot}`);
      const blob = slot && fetched && fetched.url && await blobAt(fetched.url);
      if (!blob) return sayImageNote(NOT_FETCHED);
      const file = new File([blob], drop.name, {type: drop.type});
      await putInSlot(slot, file);
      document.querySelector("#image-note")?.remove();
    },
    refused() {
      sayImageNote(notFetched(fetching.length === 1 ? fetching[0] : null));
      fetching.length = 0;  // whichever was refused, a later answer is known by its own drop
    },
  };
})();
document.addEventListener("dragover", (event) => {
  if (slotUnder(event) && fileless(event)) {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }
}, true);
document.addEventListener("drop", async (event) => {
  const slot = slotUnder(event);
  if (!slot || !fileless(event)) return;  // files: Gradio's own drop
  event.preventDefault();
  event.stopPropagation();
  const url = droppedAddress(event.dataTransfer);
  if (url && url.protocol !== "data:" && url.origin !== location.origin) return window.studioDrop.ask(slot, url);
  const name = url && url.protocol !== "data:" && fileName(url);
  const file = url && await pictureAt(url, name);
  if (!file) return sayImageNote(NO_PICTURE);
  await putInSlot(slot, file);
  document.querySelector("#image-note")?.remove();
}, true);
