// The studio open in two tabs: each tab tells the others what it wrote to History and presets
// (ui/other_tabs.py merges it in on the server), so the last tab to write no longer wins.
// A message is the whole value and what this tab removed since it last wrote (by id for
// History's runs, by name for presets), so a Clear in one tab is not undone by the other.
window.studioOtherTabs = (() => {
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("flux2-studio-kept") : null;
  const last = {};  // key -> the ids this tab last had
  const pending = {};  // key -> the message to merge, until the server takes it
  const idsOf = (key, value) => {
    if (key === "history") return (Array.isArray(value) ? value : []).map((e) => e && e.id).filter(Boolean);
    return value && typeof value === "object" ? Object.keys(value) : [];
  };
  if (channel) {
    channel.onmessage = (event) => {
      const {key, value, removed} = event.data || {};
      const button = document.querySelector("#other-tab-" + key);
      if (!button) return;
      // Two messages before the server took the first: the later value, both removals.
      pending[key] = {value, removed: [...((pending[key] && pending[key].removed) || []), ...(removed || [])]};
      button.click();
    };
  }
  return {
    wrote(key, value) {
      const now = idsOf(key, value);
      const removed = key in last ? last[key].filter((id) => !now.includes(id)) : [];
      last[key] = now;
      if (channel) channel.postMessage({key, value, removed});
    },
    take(key) {
      const message = pending[key] || null;
      delete pending[key];
      return message;
    },
  };
})();
