// The studio open in two tabs: each tab tells the others what it wrote to History and presets
// (ui/other_tabs.py merges it in on the server), so the last tab to write no longer wins.
// A message is the whole value and everything any tab of this browser removed (by id for
// History's runs, by name for presets), so a Clear in one tab is not undone by the other.
// What was removed comes from the event that removed it (a Clear's change, a preset deleted or
// renamed: `changed` below), not from comparing a tab's writes: a late answer wrote an old value,
// and what that lacked was never removed.
//
// A tab can miss messages: asleep, or its server call failed (a laptop's lid closed, the
// Space restarted). What was removed is therefore kept in localStorage (REMOVED), not only sent
// once: a tab that still has a removed run drops it at its next write, and the others drop it
// from its messages. A tab whose message lacks runs another tab has is sent that tab's value
// back, so it gets them and the browser keeps them (the last write is what a reload shows).
window.studioOtherTabs = (() => {
  // A browser that lets this site keep nothing (its cookies and site data blocked) throws at the
  // first touch of localStorage, and Gradio's History and presets (gr.BrowserState) broke with
  // it: the History panel stayed empty. They then live in this page's memory, and the page says
  // so when it loads (ui/other_tabs.py NOT_KEPT["blocked"]).
  let blocked = false;
  try {
    window.localStorage.getItem("flux2-studio-removed");
  } catch (error) {
    blocked = true;
    const items = new Map();
    const inMemory = {
      getItem: (name) => (items.has(String(name)) ? items.get(String(name)) : null),
      setItem: (name, value) => void items.set(String(name), String(value)),
      removeItem: (name) => void items.delete(String(name)),
      clear: () => items.clear(),
      key: (index) => [...items.keys()][index] ?? null,
      get length() {
        return items.size;
      },
    };
    try {
      Object.defineProperty(window, "localStorage", {value: inMemory, configurable: true});
    } catch (error) {}  // the page goes on as before
  }
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("flux2-studio-kept") : null;
  const REMOVED = "flux2-studio-removed";  // localStorage: {history: [ids], presets: [names]}, oldest first
  const KEEP = {history: 1000, presets: 200};  // removals remembered (ui/other_tabs.py reads at most 2000)
  const last = {};  // key -> the ids this tab last wrote
  const applied = {};  // key -> the change (a Clear, an Undo, a preset deleted...) last taken in
  let memory = null;  // what was removed, while localStorage cannot be written
  const lastValue = {};  // key -> the value this tab last wrote
  // A write the browser refuses (its storage for this site full) is only logged to the console
  // by Gradio, and every change after it is gone at the next reload: the page says so, once a
  // value. The refusal is seen where it happens, in setItem, for the keys of ui/layout.py.
  const STORED = {"flux2-studio-history": "history", "flux2-studio-presets": "presets"};
  const notKept = [];  // the values whose write the browser refused, for the server's warning
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (name, value) {
    try {
      return setItem.call(this, name, value);
    } catch (error) {
      const key = STORED[name];
      // The runs kept until History's write holds them (UNSAVED, below) give way to that write.
      if (key && this.getItem(UNSAVED) !== null) {
        this.removeItem(UNSAVED);
        try {
          return setItem.call(this, name, value);
        } catch (again) {}  // still full: said below
      }
      if (key && !notKept.includes(key)) {
        notKept.push(key);
        const button = document.querySelector("#other-tab-not-kept");
        if (button) button.click();
      }
      throw error;  // to Gradio, as before
    }
  };
  const pending = {};  // key -> the messages to merge, until the server takes them
  // A run lands in History two server calls after its Done (this tab's merge, then the write), and
  // a reload in that half second lost it: this tab's own changes that add to History are kept here
  // (localStorage: {history: [messages]}) from the moment they reach the page until a write of
  // History holds them, and a page that loads merges in those still here (`replay`).
  // A message no write holds an hour on (History's cap took it, or the server was gone) is let go.
  const UNSAVED = "flux2-studio-unsaved";
  const UNSAVED_KEPT = 10;  // messages (a run each, with its thumbnail): the newest
  const UNSAVED_MS = 3600 * 1000;
  const readUnsaved = () => {
    try {
      const all = JSON.parse(localStorage.getItem(UNSAVED) || "{}");
      const messages = all && typeof all === "object" && Array.isArray(all.history) ? all.history : [];
      return messages.filter((m) => m && typeof m.at === "number" && Date.now() - m.at < UNSAVED_MS);
    } catch (error) {
      return [];
    }
  };
  const keepUnsaved = (messages) => {
    try {
      if (messages.length) localStorage.setItem(UNSAVED, JSON.stringify({history: messages.slice(-UNSAVED_KEPT)}));
      else localStorage.removeItem(UNSAVED);
    } catch (error) {}  // storage full: the page says so when History's own write is refused
  };
  // Whether a write of History (`value`) holds what `message` brought: each entry there as it was
  // sent (starred or not), or removed since.
  const holds = (value, message, removed) => {
    const entries = Array.isArray(message && message.value) ? message.value : [];
    return entries.every((entry) => !entry || removed.includes(entry.id) || (Array.isArray(value) && value.some(
      (kept) => kept && kept.id === entry.id && Boolean(kept.starred) === Boolean(entry.starred))));
  };
  // A run's time as the visitor reads it, on its card and in History's notes: the server wrote
  // its own clock's ("created"), which on a Space is UTC; "at" (seconds since 1970) says when.
  const two = (n) => String(n).padStart(2, "0");
  const localTime = (entry) => {
    if (!entry || typeof entry !== "object" || typeof entry.at !== "number") return entry;
    const d = new Date(entry.at * 1000);
    const created = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
    return {...entry, created};
  };
  const idsOf = (key, value) => {
    if (key === "history") return (Array.isArray(value) ? value : []).map((e) => e && e.id).filter(Boolean);
    return value && typeof value === "object" ? Object.keys(value) : [];
  };
  const readRemoved = () => {
    if (memory) return memory;
    try {
      const all = JSON.parse(localStorage.getItem(REMOVED) || "{}");
      return all && typeof all === "object" ? all : {};
    } catch (error) {
      return {};
    }
  };
  const removedOf = (key) => (readRemoved()[key] || []).filter((id) => typeof id === "string");
  const keepRemoved = (key, ids) => {
    const all = readRemoved();
    all[key] = ids.slice(-KEEP[key]);
    try {
      localStorage.setItem(REMOVED, JSON.stringify(all));
    } catch (error) {
      memory = all;  // storage full or off: removals then travel only in this tab's messages
    }
  };
  // A change's record: {n, removed, back}: what it removed, and brought back (an Undo, a preset
  // saved again), remembered for the tabs that miss it. Taken in once.
  const takeRecord = (key, record) => {
    if (!record || typeof record !== "object" || !record.n || record.n === applied[key]) return;
    applied[key] = record.n;
    const gone = (Array.isArray(record.removed) ? record.removed : []).filter((id) => typeof id === "string");
    const back = Array.isArray(record.back) ? record.back : [];  // an Undo, a preset saved again
    keepRemoved(key, [...removedOf(key).filter((id) => !back.includes(id) && !gone.includes(id)), ...gone]);
  };
  // Hands a message to the server to merge into this tab's value (the button's click reads it).
  const merge = (key, value, removed) => {
    const button = document.querySelector("#other-tab-" + key);
    if (!button) return;
    // Messages that come while the server merges the last one are merged next, all of them, in
    // order (the click then waits: trigger_mode "always_last"): another tab's value, or a change
    // this tab made (`changed`).
    (pending[key] = pending[key] || []).push({value, removed});
    button.click();
  };
  if (channel) {
    channel.onmessage = (event) => {
      const {key, value, removed} = event.data || {};
      if (!(key in KEEP)) return;
      const gone = Array.isArray(removed) ? removed : [];
      merge(key, value, gone);
      // The sender lacks what this tab has (and nobody removed): it missed a message; tell it.
      const theirs = idsOf(key, value);
      if (key in last && last[key].some((id) => !theirs.includes(id) && !gone.includes(id))) {
        channel.postMessage({key, value: lastValue[key], removed: removedOf(key)});
      }
    };
  }
  return {
    wrote(key, value) {
      const now = idsOf(key, value);
      const removed = removedOf(key);
      last[key] = now;
      lastValue[key] = value;
      if (channel) channel.postMessage({key, value, removed});
      if (key === "history") {  // what this write holds is kept now (this tab's or another's)
        const unsaved = readUnsaved();
        const left = unsaved.filter((message) => !holds(value, message, removed));
        if (left.length !== unsaved.length) keepUnsaved(left);
      }
      // Still has what another tab removed while this one could not hear it: drop it here too.
      const stale = now.filter((id) => removed.includes(id));
      if (stale.length) merge(key, null, stale);
    },
    // A change this tab made (a run landed, a star, a Clear, an Undo: ui/history.py change; a
    // preset saved, renamed, deleted: ui/other_tabs.py preset_change) goes through the same merge
    // as another tab's, one at a time: each event that wrote the value itself wrote it as it was
    // when that event started, over what landed meanwhile.
    changed(key, message) {
      if (!message || typeof message !== "object" || !(key in KEEP)) return;
      const value = key === "history" && Array.isArray(message.value) ? message.value.map(localTime) : message.value;
      const removed = Array.isArray(message.removed) ? message.removed : [];
      const added = idsOf(key, value);
      takeRecord(key, {n: message.n, removed, back: added});  // for the tabs that miss it
      if (key === "history" && added.length) keepUnsaved([...readUnsaved(), {n: message.n, at: Date.now(), value}]);
      if (added.length || removed.length) merge(key, value, removed);
    },
    // At the page's load: what this browser's tabs added to History and no write of it holds yet
    // (the page was reloaded or closed right after a run), merged in as another tab's message.
    replay() {
      const removed = removedOf("history");
      for (const message of readUnsaved()) merge("history", message.value, removed);
    },
    // Whether this site may keep nothing in this browser ("blocked"), for the page's load.
    blocked() {
      return blocked ? "blocked" : null;
    },
    // Which value the browser refused last ("history" or "presets"), for the warning's click.
    notKept() {
      return notKept[notKept.length - 1] || null;
    },
    take(key) {
      const messages = pending[key] || null;
      delete pending[key];
      return messages;
    },
  };
})();
