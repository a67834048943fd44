// Loaded into the page's <head> by ui/page.py: keyboard shortcuts and accessible names.
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
    const run = document.querySelector("#run-button");
    if (run) { event.preventDefault(); run.click(); }
  } else if (event.key === "Escape") {
    const stop = document.querySelector("#stop-button");
    if (stop && stop.offsetParent !== null) { stop.click(); }
  }
});
// Names a screen reader can tell apart, kept as Gradio re-renders: "Remove LoRA 2" for a "✕",
// "LoRA 2 scale" and "LoRA 2 on" for a row's "scale" and "on", "Upload image 2" for a slot.
const nameControls = () => {
  const named = [
    ["button[id^='lora-remove-']", "lora-remove-", (n) => "Remove LoRA " + n, ""],
    ["[id^='lora-scale-']", "lora-scale-", (n) => "LoRA " + n + " scale", "input"],
    ["[id^='lora-on-']", "lora-on-", (n) => "LoRA " + n + " on", "input"],
    // Gradio names every empty image's upload area alike; say which slot it fills.
    ["[id^='reference-']", "reference-", (n) => "Upload image " + n,
     "[aria-label='Drop an image file here to upload']"],
  ];
  for (const [selector, prefix, label, inner] of named) {
    for (const owner of document.querySelectorAll(selector)) {
      const name = label(owner.id.slice(prefix.length));
      for (const target of inner ? owner.querySelectorAll(inner) : [owner]) {
        if (target.getAttribute("aria-label") !== name) {
          target.setAttribute("aria-label", name);
          if (!inner) target.title = name;
        }
      }
    }
  }
};
new MutationObserver(nameControls).observe(
  document, {childList: true, subtree: true, attributes: true, attributeFilter: ["id", "aria-label"]},
);
