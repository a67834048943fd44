// Loaded into the page's <head> by ui/page.py, before Gradio's own scripts run.
//
// Gradio's Stop cancels a run by POSTing /cancel with the run's event id, which the page learns
// from the answer to the run's /queue/join. A Stop in the moment before that answer is read (an
// Escape right after Run, on a busy server or page) sends event_id null: Gradio refuses that
// cancel (422), the page says "Stopped", and the run goes on, its fal job with it (gradio 6.31).
// Then the updates the run sent meanwhile are shown when the answer comes, after "Stopped".
// So here a Stop clicked while a join is unanswered waits for the answers (and a moment for
// Gradio to show what came with them), then is clicked again; and a cancel that still has no
// event id (and the /reset Gradio sends after it) waits for its join's answer and carries its
// id. Every other request goes out as it was.
//
// And the /reset that ends a Stop's cancel waits (at most a second) for the cancelled event's
// last message ("process_completed", which Gradio's /cancel sends) to come in on the page's
// stream and be handled. Handled after the page has finished the cancel, that message turns the
// event's outputs into red "Error" pills (seen on a sweep's cells, status and grid: a sweep's
// cancel takes longer, while its cells' fal jobs are cancelled, and lets the message come late).
(() => {
  const send = window.fetch.bind(window);
  const joins = new Map();  // fn_index -> the event id of its latest /queue/join (a promise)
  const unanswered = new Set();  // those promises, while their join has no answer
  let cancelled = null;  // the event id the last mended cancel carried, for the /reset after it
  const json = (body) => {
    try { return typeof body === "string" ? JSON.parse(body) : null; } catch { return null; }
  };
  const path = (input) => (typeof input === "string" ? input : (input && input.url) || String(input)).split("?")[0];
  // The events whose last message the page's stream has brought (the latest few hundred).
  const ended = new Set();
  const waiting = new Map();  // event id -> the resolve of a /reset waiting for its last message
  const heard = (id) => {
    ended.add(id);
    if (ended.size > 500) ended.delete(ended.values().next().value);
    const resolve = waiting.get(id);
    if (resolve) { waiting.delete(id); resolve(); }
  };
  const listen = (response) => {  // reads a copy of the stream, the page reads its own
    const reader = response.clone().body.getReader();
    const text = new TextDecoder();
    let pending = "";
    const next = () => reader.read().then(({done, value}) => {
      if (done) return;
      const lines = (pending + text.decode(value, {stream: true})).split("\n");
      pending = lines.pop();
      for (const line of lines) {
        const message = line.startsWith("data:") ? json(line.slice(5).trim()) : null;
        if (message && message.msg === "process_completed" && message.event_id) heard(message.event_id);
      }
      return next();
    });
    next().catch(() => {});
  };
  const lastMessageOf = (id) => new Promise((resolve) => {
    if (!id || ended.has(id)) return resolve();
    waiting.set(id, resolve);
    setTimeout(() => { waiting.delete(id); resolve(); }, 1000);  // none comes for an event already over
  }).then(() => new Promise((resolve) => setTimeout(resolve, 50)));  // the page handles it first
  window.fetch = (input, init) => {
    const where = path(input);
    const body = init && String(init.method).toUpperCase() === "POST" ? json(init.body) : null;
    if (!body) {
      const answer = send(input, init);
      if (where.endsWith("/queue/data")) answer.then((response) => response.ok && response.body && listen(response));
      return answer;
    }
    if (where.endsWith("/queue/join")) {
      const answer = send(input, init);
      const id = answer.then((r) => r.clone().json()).then((r) => r.event_id || null, () => null);
      joins.set(body.fn_index, id);
      unanswered.add(id);
      id.finally(() => unanswered.delete(id));
      return answer;
    }
    if (where.endsWith("/cancel") && body.event_id == null && joins.has(body.fn_index)) {
      return joins.get(body.fn_index).then((id) => {
        cancelled = id;
        return send(input, {...init, body: JSON.stringify({...body, event_id: id})});
      });
    }
    if (where.endsWith("/reset")) {
      const id = body.event_id == null && cancelled ? cancelled : body.event_id;
      cancelled = null;
      return lastMessageOf(id).then(() => send(input, {...init, body: JSON.stringify({...body, event_id: id})}));
    }
    return send(input, init);
  };
  let releasing = false;  // the held click, clicked again: it goes through
  document.addEventListener("click", (event) => {
    const stop = event.target.closest && event.target.closest("#stop-button");
    if (!stop || releasing || unanswered.size === 0) return;
    event.stopPropagation();
    event.preventDefault();
    Promise.allSettled([...unanswered]).then(() => setTimeout(() => {
      releasing = true;
      try { (document.querySelector("#stop-button") || stop).click(); } finally { releasing = false; }
    }, 50));
  }, true);  // capture: before Gradio's own handler
})();
