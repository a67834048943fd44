// The form as the visitor left it, back after a reload they did not ask for (ui/draft.py says
// why). As the form changes, its settings go into this tab's sessionStorage and its images into
// IndexedDB (a picture is too big for sessionStorage, and a server restart empties its uploads),
// under this tab's id; never the fal key. When the connection to the server is lost (Gradio's
// "Connection to the server was lost" notice, after which it reloads the page once it can
// reach the server) or the browser brings back a tab it had discarded, the new page hands the
// settings to the server to check and set (#draft-restore) and puts the images back into their
// slots as uploads, through the slots' own checks. A reload the visitor asks for starts afresh.
window.studioDraft = (() => {
  const FORM = "studio-draft", WANTED = "studio-draft-wanted", TAB = "studio-tab";
  const LOST = "Connection to the server was lost";
  const DAY = 86400 * 1000;
  const session = {
    get: (key) => { try { return sessionStorage.getItem(key); } catch { return null; } },
    set: (key, value) => { try { sessionStorage.setItem(key, value); } catch { /* full, or not allowed */ } },
    drop: (key) => { try { sessionStorage.removeItem(key); } catch { /* not allowed */ } },
  };
  const tab = session.get(TAB) || `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  session.set(TAB, tab);
  // Read now, before this page's first values could be saved over the draft it is to restore.
  const wanted = session.get(WANTED) === "1" || document.wasDiscarded === true;
  session.drop(WANTED);
  let pending = wanted ? session.get(FORM) : null;

  let base = null;  // IndexedDB: {blob, name, url, saved} per "<tab>/<slot>"; null where it cannot be opened
  const images = () => base || (base = new Promise((resolve) => {
    try {
      const request = indexedDB.open("studio-draft", 1);
      request.onupgradeneeded = () => request.result.createObjectStore("images");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => resolve(null);
    } catch { resolve(null); }
  }));
  const stored = async (mode, work) => {
    const db = await images();
    if (!db) return null;
    return new Promise((resolve) => {
      const done = db.transaction("images", mode);
      const request = work(done.objectStore("images"));
      done.oncomplete = () => resolve(request ? request.result : null);
      done.onerror = done.onabort = () => resolve(null);
    });
  };
  // Other tabs' pictures are kept a day (a tab reloaded later than that starts afresh).
  stored("readwrite", (store) => {
    const cursor = store.openCursor();
    cursor.onsuccess = () => {
      const at = cursor.result;
      if (!at) return;
      if (!at.value || Date.now() - at.value.saved > DAY) at.delete();
      at.continue();
    };
    return null;
  });

  // Images 4-6 are drawn once the restored settings choose the local backend: wait for them a while.
  const slotShown = async (number) => {
    for (let tries = 0; tries < 50; tries++) {
      const slot = document.querySelector(`#reference-${number}`);
      if (slot && slot.querySelector("input[type=file]")) return slot;
      await new Promise((done) => setTimeout(done, 200));
    }
    return null;
  };
  // Once the page is being left (a reload the visitor asked for, a link, Gradio's own reload after
  // its notice), the connections it closes are not a lost connection.
  let leaving = false;
  addEventListener("beforeunload", () => { leaving = true; });
  addEventListener("pagehide", () => { leaving = true; });
  let lostTimer = null;
  const lostShown = () => [...document.querySelectorAll(".toast-body")].some((t) => t.textContent.includes(LOST));
  const keptUrls = {};  // slot -> the address whose picture is kept for it
  const keepImage = async (slot, value) => {
    const url = value && value.url;
    if (keptUrls[slot] === (url || null)) return;
    keptUrls[slot] = url || null;
    if (!url) return stored("readwrite", (store) => store.delete(`${tab}/${slot}`));
    const blob = await blobAt(url);
    if (blob && keptUrls[slot] === url) {
      const name = value.orig_name || `image-${slot}.${blob.type.split("/")[1] || "png"}`;
      await stored("readwrite", (store) => store.put({blob, name, url, saved: Date.now()}, `${tab}/${slot}`));
    }
  };

  return {
    save(names, values) {  // every change of the form (ui/draft.py save_js); no server call
      if (pending !== null) return;  // not before the draft waiting here is restored
      const form = {}, slots = [];
      names.forEach((name, i) => {
        if (name.startsWith("image_")) slots.push(values[i] && values[i].url ? values[i] : null);
        else form[name] = values[i];
      });
      session.set(FORM, JSON.stringify({form, images: slots.map((value) => value ? value.url : null)}));
      slots.forEach((value, i) => keepImage(i + 1, value));
    },
    lost() { session.set(WANTED, "1"); },
    take() { return this.restoring ? this.restoring.form : null; },  // the settings, for the server
    restoring: null,
    async ready() {  // the page has loaded: restore the draft waiting, if any
      let draft = null;
      try { draft = pending && JSON.parse(pending); } catch { draft = null; }
      if (!draft || !draft.form) { pending = null; return; }
      const wantedImages = Array.isArray(draft.images) ? draft.images : [];
      const records = await Promise.all(wantedImages.map((url, i) => url
        ? stored("readonly", (store) => store.get(`${tab}/${i + 1}`)) : null));
      this.restoring = {form: draft.form};
      document.querySelector("#draft-restore")?.click();
      const missing = [];
      for (const [i, url] of wantedImages.entries()) {
        // The slot's picture as the draft last saw it (one still being kept as the page went is not there).
        const record = records[i] && records[i].url === url ? records[i] : null;
        const slot = record && await slotShown(i + 1);
        if (record && record.blob && slot) {
          await putInSlot(slot, new File([record.blob], record.name, {type: record.blob.type}));
        } else if (url) missing.push(i + 1);
      }
      pending = null;
      if (missing.length) {
        sayImageNote(`Image ${missing.join(" and ")} could not be brought back after the reload: add `
                     + (missing.length > 1 ? "them" : "it") + " again.");
      } else document.querySelector("#image-note")?.remove();
    },
    noticeLost() {  // Gradio's notice that the connection is lost: its reload follows, 2 s or more after it
      if (leaving || lostTimer || !lostShown()) return;
      // A page being left closes its connections, and Gradio may say so as it goes: only a notice
      // still there a second later, on a page not being left, is a lost connection.
      lostTimer = setTimeout(() => {
        lostTimer = null;
        if (!leaving && lostShown()) this.lost();
      }, 1000);
    },
  };
})();
new MutationObserver(() => window.studioDraft.noticeLost()).observe(document, {childList: true, subtree: true});
