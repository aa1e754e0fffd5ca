interface TaskView {
  id: string;
  title: string;
  done: boolean;
}

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

/** Server-rendered first; the inline script keeps the list live from /events. */
export function renderPage(tasks: TaskView[]): string {
  const items = tasks.map(renderTask).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether demo</title>
<style>
  :root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2430; background: #f4f5f8; }
  main { max-width: 640px; margin: 48px auto; padding: 0 16px; }
  h1 { font-size: 1.5rem; margin: 0 0 4px; } .sub { color: #667; margin: 0 0 24px; }
  .card { background: #fff; border-radius: 12px; box-shadow: 0 1px 3px rgba(0,0,0,.08); padding: 16px; }
  ul { list-style: none; margin: 0; padding: 0; } li { display: flex; gap: 12px; align-items: center; padding: 10px 4px; border-bottom: 1px solid #eef; }
  li.done span { text-decoration: line-through; color: #99a; }
  form { display: flex; gap: 8px; margin-top: 12px; } input[type=text] { flex: 1; padding: 8px 10px; border: 1px solid #ccd; border-radius: 8px; }
  button { padding: 8px 14px; border: 0; border-radius: 8px; background: #3451d1; color: #fff; cursor: pointer; }
  .status { font-size: .85rem; color: #667; } .status b { color: #1a7f37; } .status.off b { color: #b3261e; }
  #log { font: 12px ui-monospace, monospace; color: #556; max-height: 160px; overflow: auto; margin-top: 16px; }
</style></head>
<body><main>
  <h1>Launch Tether</h1>
  <p class="sub">Every committed write — from this page, another tab, or psql — shows up here. <span id="status" class="status">connecting…</span></p>
  <div class="card">
    <ul id="tasks">${items}</ul>
    <form id="add"><input type="text" name="title" placeholder="Add a task" maxlength="200" required><button>Add</button></form>
  </div>
  <div id="log" class="card" aria-label="activity"></div>
</main>
<script type="module">
  const list = document.getElementById("tasks"), status = document.getElementById("status"), log = document.getElementById("log");
  const esc = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const render = (t) => \`<li class="\${t.done ? "done" : ""}"><input type="checkbox" data-id="\${esc(t.id)}" \${t.done ? "checked" : ""}><span>\${esc(t.title)}</span></li>\`;
  async function refresh() { const tasks = await (await fetch("/api/tasks")).json(); list.innerHTML = tasks.map(render).join(""); }
  const events = new EventSource("/events");
  events.onopen = () => { status.className = "status"; status.innerHTML = "<b>● live</b>"; refresh(); };
  events.onerror = () => { status.className = "status off"; status.innerHTML = "<b>● reconnecting</b>"; };
  events.onmessage = (m) => {
    const event = JSON.parse(m.data);
    for (const c of event.changes ?? []) log.insertAdjacentHTML("afterbegin", \`<div>\${esc(c.at)} \${esc(c.op)} \${esc(c.table)} \${esc(JSON.stringify(c.pk))}</div>\`);
    refresh();
  };
  document.getElementById("add").onsubmit = async (e) => {
    e.preventDefault(); const form = new FormData(e.target);
    await fetch("/api/tasks", { method: "POST", body: new URLSearchParams(form) }); e.target.reset();
  };
  list.onchange = (e) => { const id = e.target.dataset.id; if (id) fetch(\`/api/tasks/\${encodeURIComponent(id)}/toggle\`, { method: "POST" }); };
</script>
</body></html>`;
}

function renderTask(task: TaskView): string {
  return `<li class="${task.done ? "done" : ""}"><input type="checkbox" data-id="${escape(task.id)}" ${task.done ? "checked" : ""}><span>${escape(task.title)}</span></li>`;
}
