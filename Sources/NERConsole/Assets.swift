// The console's page, style and script, compiled into the binary (docs/console.md): no build step,
// no files to install beside it, nothing fetched at run time. Every value that comes from data is
// put into the page as text (textContent, text nodes, attribute values), never parsed as HTML.

enum Assets {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ner-console</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <span class="brand">ner</span>
  <nav id="nav">
    <a href="#/jobs" data-r="jobs">Jobs</a>
    <a href="#/new" data-r="new" class="op">New training</a>
    <a href="#/models" data-r="models">Models</a>
    <a href="#/try" data-r="try">Try it</a>
    <a href="#/users" data-r="users" class="admin">Users</a>
    <a href="#/audit" data-r="audit">Audit</a>
  </nav>
  <span id="live" title="live updates">&#9679;</span>
  <span id="who"></span>
  <button id="signout" class="link">Sign out</button>
</header>
<main id="main"><p class="muted">Loading…</p></main>
<dialog id="confirm">
  <p id="confirm-text"></p>
  <div class="row"><button id="confirm-yes" class="primary">Yes</button> <button id="confirm-no">Cancel</button></div>
</dialog>
</body>
</html>
"""#

    static let css = #"""
:root { --fg:#1d2430; --muted:#6b7380; --line:#dde1e7; --bg:#f7f8fa; --accent:#2457c5; --bad:#b3261e; --ok:#1e7d32; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:center; gap:18px; padding:10px 20px; background:#fff; border-bottom:1px solid var(--line); }
.brand { font-weight:700; font-size:16px; color:var(--accent); }
nav a { margin-right:14px; color:var(--fg); text-decoration:none; padding:4px 2px; }
nav a.on { border-bottom:2px solid var(--accent); }
#who { margin-left:auto; color:var(--muted); }
#live { color:#aaa; font-size:10px; } #live.on { color:var(--ok); }
main { padding:18px 20px; max-width:1280px; }
h2 { margin:4px 0 14px; font-size:19px; } h3 { margin:20px 0 8px; font-size:15px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f0f2f5; font-weight:600; } th.sort { cursor:pointer; }
tr.sel td { background:#eef3ff; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
a { color:var(--accent); }
.muted { color:var(--muted); } .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; background:#e8ebf0; }
.s-queued { background:#e8ebf0; } .s-running { background:#fff1c2; } .s-trained, .s-packed { background:#dfeafd; }
.s-registered, .s-done { background:#d7f0dc; } .s-failed { background:#fbd9d6; } .s-cancelled { background:#eee; color:#666; }
.chip { display:inline-block; padding:0 6px; margin-right:4px; border-radius:4px; background:#eef2fb; font-size:12px; }
.filters, .row { display:flex; gap:8px; align-items:center; flex-wrap:wrap; margin-bottom:12px; }
input, select, textarea { font:inherit; padding:4px 6px; border:1px solid #c4cad3; border-radius:4px; background:#fff; }
textarea { width:100%; }
button { font:inherit; padding:4px 12px; border:1px solid #c4cad3; border-radius:4px; background:#fff; cursor:pointer; }
button.primary { background:var(--accent); color:#fff; border-color:var(--accent); }
button.danger { color:var(--bad); border-color:var(--bad); }
button.link { border:none; background:none; color:var(--accent); padding:0; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 14px; margin-bottom:14px; }
.grid { display:grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap:10px 16px; }
.field label { display:block; font-size:12px; color:var(--muted); }
.field input, .field select { width:100%; }
.err { color:var(--bad); font-size:12px; min-height:0; }
.msg { padding:8px 10px; border-radius:4px; margin-bottom:10px; }
.msg.bad { background:#fbe3e1; color:var(--bad); } .msg.good { background:#e2f4e5; color:var(--ok); }
.steps { display:flex; gap:4px; margin:8px 0 12px; flex-wrap:wrap; }
.steps span { padding:2px 10px; border-radius:12px; background:#eceff3; color:#889; font-size:12px; }
.steps span.done { background:#d7f0dc; color:#163; } .steps span.fail { background:#fbd9d6; color:#8a1c12; }
pre { background:#0f1720; color:#d7dde6; padding:10px; border-radius:6px; overflow:auto; max-height:360px; font-size:12px; white-space:pre-wrap; word-break:break-all; }
dl.kv { display:grid; grid-template-columns: 150px 1fr; gap:4px 10px; margin:0; } dl.kv dt { color:var(--muted); }
.charts { display:flex; gap:14px; flex-wrap:wrap; }
svg.chart { background:#fff; border:1px solid var(--line); border-radius:6px; }
svg .axis { stroke:#99a; stroke-width:1; } svg .grid { stroke:#eef0f3; } svg text { font-size:10px; fill:#667; }
svg .line-a { fill:none; stroke:#2457c5; stroke-width:2; } svg .line-b { fill:none; stroke:#d9822b; stroke-width:2; stroke-dasharray:5 3; }
svg .pt { fill:#2457c5; } svg .pt-b { fill:#d9822b; }
svg .bar-p { fill:#8fb1ee; } svg .bar-r { fill:#f2c078; } svg .bar-f { fill:#2457c5; }
.out { background:#fff; border:1px solid var(--line); border-radius:6px; padding:14px; line-height:2.3; font-size:15px; white-space:pre-wrap; }
mark.ent { padding:2px 4px; border-radius:4px; background:#ddd; }
mark.ent .lbl { font-size:10px; font-weight:700; margin-left:4px; vertical-align:middle; opacity:.75; }
.t0 { background:#aa9cfc !important; } .t1 { background:#feca74 !important; } .t2 { background:#7aecec !important; } .t3 { background:#bfe1d9 !important; }
.t4 { background:#e4e7d2 !important; } .t5 { background:#ffeb80 !important; } .t6 { background:#ff9561 !important; } .t7 { background:#c887fb !important; }
.legend span { margin-right:10px; }
dialog { border:1px solid var(--line); border-radius:8px; padding:16px 20px; }
.pager { display:flex; gap:10px; align-items:center; margin-top:10px; }
body.viewer .op, body.viewer .admin, body.operator .admin { display:none !important; }
"""#

    static let js = #"""
'use strict';
// ner-console's page (docs/console.md). Data is always inserted as text: el() appends strings as
// text nodes, never as HTML.
const S = { me: null, csrf: '', refresh: null, timers: [], es: null, debounce: null };
const $ = (q, r) => (r || document).querySelector(q);
const $$ = (q, r) => Array.from((r || document).querySelectorAll(q));

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'value') e.value = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const SVGNS = 'http://www.w3.org/2000/svg';
function sv(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of kids.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const link = (href, text, cls) => el('a', { href, class: cls }, text);
const enc = encodeURIComponent;
const fmt = (x, d) => (typeof x === 'number' && isFinite(x)) ? x.toFixed(d === undefined ? 4 : d) : '–';
const pct = (x) => (typeof x === 'number') ? (100 * x).toFixed(2) : '–';
const when = (t) => t ? String(t).replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–';
const bytes = (n) => typeof n !== 'number' ? '–' : n > 1 << 20 ? (n / 1048576).toFixed(1) + ' MiB' : (n / 1024).toFixed(1) + ' KiB';
const badge = (s) => el('span', { class: 'badge s-' + s, 'data-status': s }, s);
const can = (role) => ({ viewer: 0, operator: 1, admin: 2 }[S.me ? S.me.role : 'viewer'] >= { viewer: 0, operator: 1, admin: 2 }[role]);

async function api(method, path, body, raw) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') opt.headers['X-CSRF-Token'] = S.csrf;
  if (body !== undefined) {
    if (raw) { opt.body = body; opt.headers['Content-Type'] = 'application/octet-stream'; }
    else { opt.body = JSON.stringify(body); opt.headers['Content-Type'] = 'application/json'; }
  }
  const r = await fetch(path, opt);
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = null; }
  if (r.status === 401) { signedOut(); throw new Error('not signed in'); }
  return { status: r.status, ok: r.ok, data, text, headers: r.headers };
}

function signedOut() {
  document.body.className = '';
  const m = $('#main');
  m.replaceChildren(el('div', { class: 'card' }, el('h2', {}, 'Not signed in'),
    el('p', {}, 'Open the one-time sign-in link that ner-console printed, or ask an admin for one (ner-console user add NAME).')));
}

function confirmDo(text) {
  return new Promise((resolve) => {
    const d = $('#confirm');
    $('#confirm-text').textContent = text;
    const done = (v) => { d.close(); resolve(v); };
    $('#confirm-yes').onclick = () => done(true);
    $('#confirm-no').onclick = () => done(false);
    d.showModal();
  });
}

function message(kind, text) { return el('div', { class: 'msg ' + kind, role: 'status' }, text); }

function rendered(name) {
  document.body.dataset.rendered = name;
  window.nerRendered = performance.now();
}

function clearTimers() { S.timers.forEach(clearInterval); S.timers = []; S.refresh = null; }

function onChange(ev) {
  if (!S.refresh) return;
  clearTimeout(S.debounce);
  S.debounce = setTimeout(() => { if (S.refresh) S.refresh(ev); }, 150);
}

function connectEvents() {
  if (S.es) S.es.close();
  S.es = new EventSource('/api/events');
  S.es.onopen = () => $('#live').classList.add('on');
  S.es.onerror = () => $('#live').classList.remove('on');
  S.es.addEventListener('change', (e) => { let d = {}; try { d = JSON.parse(e.data); } catch (x) {} onChange(d); });
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, q] = h.split('?');
  const parts = path.split('/').map(decodeURIComponent);
  const params = new URLSearchParams(q || '');
  return { parts, params };
}

async function route() {
  clearTimers();
  const { parts, params } = parseHash();
  const page = parts[0] || 'jobs';
  $$('#nav a').forEach((a) => a.classList.toggle('on', a.dataset.r === page));
  const main = $('#main');
  try {
    switch (page) {
      case 'job': return await jobPage(main, parts[1]);
      case 'new': return await newPage(main);
      case 'models': return await modelsPage(main);
      case 'model': return await modelPage(main, parts[1], params);
      case 'sweep': return await sweepPage(main, parts[1]);
      case 'try': return await tryPage(main, params);
      case 'users': return await usersPage(main);
      case 'audit': return await auditPage(main);
      default: return await jobsPage(main, params);
    }
  } catch (e) {
    if (String(e.message) !== 'not signed in') main.replaceChildren(message('bad', 'Error: ' + e.message));
  }
}

// ---- Jobs -----------------------------------------------------------------------------------

async function jobsPage(main, params) {
  const limit = 50;
  const f = { name: params.get('name') || '', status: params.get('status') || '', sweep: params.get('sweep') || '',
              offset: Number(params.get('offset') || 0) };
  const name = el('input', { id: 'f-name', placeholder: 'name starts with', value: f.name });
  const status = el('select', { id: 'f-status' }, el('option', { value: '' }, 'any status'),
    S.me.statuses.map((s) => el('option', { value: s, selected: s === f.status }, s)));
  const sweep = el('input', { id: 'f-sweep', placeholder: 'sweep id', value: f.sweep });
  const go = (offset) => {
    const q = new URLSearchParams();
    if (name.value) q.set('name', name.value);
    if (status.value) q.set('status', status.value);
    if (sweep.value) q.set('sweep', sweep.value);
    if (offset) q.set('offset', offset);
    location.hash = '#/jobs?' + q.toString();
  };
  const form = el('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); go(0); } },
    name, status, sweep, el('button', { type: 'submit' }, 'Filter'),
    can('operator') ? link('#/new', 'New training', 'op') : null);
  const body = el('tbody', { id: 'jobs-body' });
  const info = el('span', { id: 'jobs-info', class: 'muted' });
  const prev = el('button', { id: 'prev', onclick: () => go(Math.max(0, f.offset - limit)) }, '← Newer');
  const next = el('button', { id: 'next', onclick: () => go(f.offset + limit) }, 'Older →');
  main.replaceChildren(el('h2', {}, 'Jobs'), form,
    el('table', { id: 'jobs' }, el('thead', {}, el('tr', {}, ['Job', 'Name', 'Status', 'Attempt', 'Backend id', 'Sweep', 'Created', 'Updated'].map((h) => el('th', {}, h)))), body),
    el('div', { class: 'pager' }, prev, info, next));
  async function load() {
    const q = new URLSearchParams({ limit, offset: f.offset });
    if (f.name) q.set('name', f.name);
    if (f.status) q.set('status', f.status);
    if (f.sweep) q.set('sweep', f.sweep);
    const r = await api('GET', '/api/jobs?' + q.toString());
    if (!r.ok) { body.replaceChildren(el('tr', {}, el('td', { colspan: 8 }, r.data ? r.data.error : r.text))); return; }
    const rows = r.data.jobs.map((j) => el('tr', { dataset: { job: j.job_id } },
      el('td', { class: 'mono' }, link('#/job/' + enc(j.job_id), j.job_id)), el('td', {}, j.name), el('td', {}, badge(j.status)),
      el('td', { class: 'num' }, j.attempt), el('td', { class: 'mono' }, j.backend_id || ''),
      el('td', { class: 'mono' }, j.sweep_id ? link('#/sweep/' + enc(j.sweep_id), String(j.sweep_id).slice(0, 20) + '…') : ''),
      el('td', {}, when(j.created_at)), el('td', {}, when(j.updated_at))));
    body.replaceChildren(...rows);
    const total = r.data.total;
    info.textContent = total ? `${f.offset + 1}–${f.offset + rows.length} of ${total.toLocaleString('en')}` : 'no jobs';
    prev.disabled = f.offset === 0;
    next.disabled = f.offset + limit >= total;
  }
  await load();
  S.refresh = load;
  rendered('jobs');
}

const STEPS = ['queued', 'running', 'trained', 'packed', 'registered'];

async function jobPage(main, id) {
  const head = el('h2', {}, 'Job ', el('span', { class: 'mono' }, id));
  const status = el('span', { id: 'job-status' });
  const steps = el('div', { class: 'steps', id: 'job-steps' });
  const facts = el('dl', { class: 'kv', id: 'job-facts' });
  const timeline = el('tbody', { id: 'job-timeline' });
  const logPre = el('pre', { id: 'job-log' });
  const actions = el('div', { class: 'row' });
  const note = el('div');
  main.replaceChildren(head, el('div', { class: 'row' }, 'Status: ', status), steps, note, actions,
    el('div', { class: 'card' }, facts),
    el('h3', {}, 'Timeline'), el('table', {}, el('thead', {}, el('tr', {}, ['Status', 'At', 'Attempt', 'Host', 'Detail'].map((h) => el('th', {}, h)))), timeline),
    el('h3', {}, 'Log'), logPre);
  let logOffset = -1;
  let current = '';
  async function loadLog() {
    const r = await api('GET', `/api/jobs/${enc(id)}/log?offset=${logOffset}`);
    if (!r.ok || !r.data) return;
    if (logOffset < 0) logPre.textContent = '';
    if (r.data.text) logPre.append(document.createTextNode(r.data.text));
    if (!r.data.exists && !logPre.textContent) logPre.textContent = '(no log yet)';
    logOffset = r.data.offset;
    logPre.scrollTop = logPre.scrollHeight;
  }
  async function load() {
    const r = await api('GET', '/api/jobs/' + enc(id));
    if (!r.ok) { note.replaceChildren(message('bad', r.data ? r.data.error : r.text)); return; }
    const j = r.data;
    current = j.status || j.spool_state || '';
    status.replaceChildren(badge(current));
    const reached = new Set((j.transitions || []).map((t) => t.status));
    steps.replaceChildren(...STEPS.map((s) => el('span', { class: reached.has(s) ? 'done' : '' }, s)),
      ...['failed', 'cancelled'].filter((s) => reached.has(s)).map((s) => el('span', { class: 'fail' }, s)));
    const rec = j.record || {};
    const spec = rec.spec || {};
    const kv = [['Name', j.name || rec.name], ['Attempt', j.attempt], ['Backend id', j.backend_id || '–'],
      ['Spool', j.spool_state || '–'], ['Duration', j.seconds !== undefined ? j.seconds + ' s' : '–'],
      ['Created', when(rec.created_at)], ['Updated', when(j.updated_at)],
      ['Train', spec.train], ['Dev', spec.dev || '–'], ['Epochs', spec.epochs], ['Sweep', rec.sweep_id || '–'],
      ['Error', j.error || '–']];
    facts.replaceChildren(...kv.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v === undefined ? '–' : v)]));
    if (j.model_id) facts.append(el('dt', {}, 'Model'), el('dd', {}, link('#/model/' + enc(j.name) + '?v=' + enc(j.model_id), j.model_id)));
    timeline.replaceChildren(...(j.transitions || []).map((t) => el('tr', {}, el('td', {}, badge(t.status)), el('td', {}, when(t.at)),
      el('td', { class: 'num' }, t.attempt), el('td', {}, t.host), el('td', {}, t.detail || ''))));
    actions.replaceChildren();
    if (can('operator') && ['queued', 'running', 'trained', 'packed'].includes(current)) {
      actions.append(el('button', { id: 'cancel', class: 'danger', onclick: async () => {
        if (!(await confirmDo('Cancel job ' + id + '?'))) return;
        const c = await api('POST', `/api/jobs/${enc(id)}/cancel`, {});
        note.replaceChildren(message(c.ok ? 'good' : 'bad', c.ok ? 'Cancel requested (it was ' + c.data.was + ').' : c.data.error));
        load();
      } }, 'Cancel job'));
    }
    await loadLog();
  }
  await load();
  S.refresh = load;
  S.timers.push(setInterval(() => { if (['queued', 'running', 'trained', 'packed'].includes(current)) loadLog(); }, 2000));
  rendered('job');
}

// ---- New training -----------------------------------------------------------------------------

const SPEC_FIELDS = ['epochs', 'batch_size', 'learning_rate', 'optimizer', 'dropout', 'hidden_size', 'word_dim', 'char_dim',
  'seed', 'device', 'threads', 'patience'];
const RES_FIELDS = ['cpus', 'gpus', 'mem', 'time', 'partition'];

function field(name, label, input, extra) {
  return el('div', { class: 'field', id: 'fld-' + name }, el('label', { for: input.id }, label), input, extra || null,
    el('div', { class: 'err', id: 'err-' + name }));
}

function uploader(target) {
  const info = el('span', { class: 'muted' });
  const file = el('input', { type: 'file', id: 'up-' + target.id, accept: '.txt,.conll,.iob,.bio' });
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    info.textContent = 'uploading…';
    const r = await api('POST', '/api/uploads?name=' + enc(f.name), await f.arrayBuffer(), true);
    if (r.ok) { target.value = r.data.path; info.textContent = `${r.data.sentences} sentences`; }
    else info.textContent = r.data ? r.data.error : r.text;
  });
  return el('div', {}, file, ' ', info);
}

async function newPage(main) {
  const d = S.me.defaults || {};
  const res = d.resources || {};
  const inputs = {};
  const mk = (name, value, type) => (inputs[name] = el('input', { id: 'in-' + name, name, value: value === undefined ? '' : value, type: type || 'text' }));
  const root = (S.me.data_roots || [])[0] || '';
  const pathHelp = S.me.data_roots && S.me.data_roots.length ? 'under ' + S.me.data_roots.join(', ') + ' or uploaded' : 'uploaded';
  const top = el('div', { class: 'grid' },
    field('name', 'Name', mk('name', 'ner')), field('priority', 'Priority (-9…9)', mk('priority', '0', 'number')),
    field('train', 'Train (CoNLL), ' + pathHelp, mk('train', ''), uploader(inputs.train)),
    field('dev', 'Dev (CoNLL)', mk('dev', ''), uploader(inputs.dev)),
    field('test', 'Test (CoNLL)', mk('test', ''), uploader(inputs.test)),
    field('embeddings', 'Embeddings (none, or a vectors file)', mk('embeddings', d.embeddings || 'none')));
  const hyper = el('div', { class: 'grid' }, SPEC_FIELDS.map((k) => field(k, k.replace(/_/g, ' ') + ' (default ' + d[k] + ')', mk(k, d[k]))));
  const resources = el('div', { class: 'grid' }, RES_FIELDS.map((k) => field(k, k + (res[k] !== undefined ? ' (default ' + res[k] + ')' : ''), mk(k, res[k]))));
  const note = el('div', { id: 'new-note' });
  const form = el('form', { id: 'new-job', onsubmit: async (e) => { e.preventDefault(); await submitJob(); } },
    el('div', { class: 'card' }, el('h3', {}, 'Data'), top),
    el('div', { class: 'card' }, el('h3', {}, 'Hyper-parameters'), hyper),
    el('div', { class: 'card' }, el('h3', {}, 'Resources and backend'), resources),
    el('button', { type: 'submit', class: 'primary', id: 'submit-job' }, 'Queue training'));
  async function submitJob() {
    $$('.err', form).forEach((x) => (x.textContent = ''));
    note.replaceChildren();
    const spec = {};
    for (const k of ['train', 'dev', 'test', 'embeddings'].concat(SPEC_FIELDS)) {
      const v = inputs[k].value.trim();
      if (v === '' || String(v) === String(d[k])) continue;
      spec[k] = ['optimizer', 'device', 'train', 'dev', 'test', 'embeddings'].includes(k) ? v : Number(v);
    }
    const r = {};
    for (const k of RES_FIELDS) {
      const v = inputs[k].value.trim();
      if (v === '' || String(v) === String(res[k])) continue;
      r[k] = ['cpus', 'gpus'].includes(k) ? Number(v) : v;
    }
    if (Object.keys(r).length) spec.resources = r;
    const req = { name: inputs.name.value.trim(), priority: Number(inputs.priority.value || 0), spec };
    const out = await api('POST', '/api/jobs', req);
    if (out.ok) { location.hash = '#/job/' + enc(out.data.job_id); return; }
    const msg = out.data ? out.data.error : out.text;
    const slot = out.data && out.data.field && $('#err-' + out.data.field);
    if (slot) slot.textContent = msg; else note.replaceChildren(message('bad', msg));
  }
  let sweepTimer = null;
  // Sweeps: a form for the search (grid or random, one row per hyper-parameter) that writes the
  // JSON of a sweep file (ner-queue --sweep) into the box below it, where it may be edited too.
  const sweepText = el('textarea', { id: 'sweep-json', rows: 8 });
  const sw = {
    name: el('input', { id: 'sw-name', value: 'sweep' }),
    train: el('input', { id: 'sw-train', value: root ? root + '/train.txt' : 'train.txt' }),
    dev: el('input', { id: 'sw-dev', value: root ? root + '/dev.txt' : 'dev.txt' }),
    epochs: el('input', { id: 'sw-epochs', type: 'number', value: '5' }),
    mode: el('select', { id: 'sw-mode' }, el('option', { value: 'grid' }, 'grid: every combination'), el('option', { value: 'random' }, 'random: draw trials')),
    trials: el('input', { id: 'sw-trials', type: 'number', value: '8' }),
    seed: el('input', { id: 'sw-seed', type: 'number', value: '1' }),
  };
  const SWEEP_FIELDS = ['learning_rate', 'dropout', 'hidden_size', 'batch_size', 'epochs', 'word_dim', 'char_dim', 'seed', 'optimizer'];
  const DISTS = ['uniform', 'log_uniform', 'int', 'choice'];
  const paramRows = el('div', { id: 'sw-params' });
  const num = (t) => { const v = t.trim(); return v !== '' && isFinite(Number(v)) ? Number(v) : v; };
  const list = (t) => t.split(',').map((x) => x.trim()).filter((x) => x !== '').map(num);
  const addParam = (field, values, dist) => {
    const row = el('div', { class: 'row sw-param' },
      el('select', { class: 'sw-field' }, SWEEP_FIELDS.map((f) => el('option', { value: f, selected: f === field }, f))),
      el('select', { class: 'sw-dist' }, DISTS.map((d) => el('option', { value: d, selected: d === (dist || 'log_uniform') }, d))),
      el('input', { class: 'sw-values', value: values, placeholder: 'grid: values, comma-separated; random: lo, hi (choice: values)' }),
      el('button', { type: 'button', onclick: () => { row.remove(); writeSweep(); } }, 'Remove'));
    paramRows.append(row);
  };
  const writeSweep = () => {
    const random = sw.mode.value === 'random';
    for (const d of $$('.sw-dist', paramRows)) d.hidden = !random;
    sw.trials.parentNode.hidden = sw.seed.parentNode.hidden = !random;
    const base = { train: sw.train.value.trim() };
    if (sw.dev.value.trim()) base.dev = sw.dev.value.trim();
    if (sw.epochs.value) base.epochs = Number(sw.epochs.value);
    const space = {};
    for (const row of $$('.sw-param', paramRows)) {
      const field = $('.sw-field', row).value, values = list($('.sw-values', row).value), dist = $('.sw-dist', row).value;
      space[field] = random ? { [dist]: values } : values;
    }
    const body = { name: sw.name.value.trim(), base };
    if (random) { body.random = space; body.trials = Number(sw.trials.value); body.seed = Number(sw.seed.value); } else body.grid = space;
    sweepText.value = JSON.stringify(body, null, 2);
    if (can('operator')) { clearTimeout(sweepTimer); sweepTimer = setTimeout(countTrials, 300); }
  };
  addParam('learning_rate', '0.001, 0.002');
  addParam('hidden_size', '100, 200', 'choice');
  const sweepForm = el('div', { id: 'sweep-form', oninput: writeSweep, onchange: writeSweep },
    el('div', { class: 'grid' }, field('sw-name', 'name', sw.name), field('sw-train', 'train', sw.train), field('sw-dev', 'dev', sw.dev),
      field('sw-epochs', 'epochs', sw.epochs), field('sw-mode', 'search', sw.mode), field('sw-trials', 'trials', sw.trials), field('sw-seed', 'seed', sw.seed)),
    paramRows, el('button', { id: 'sw-add', type: 'button', onclick: () => { addParam('dropout', ''); writeSweep(); } }, 'Add a hyper-parameter'));
  const sweepNote = el('div', { id: 'sweep-note' });
  const sweepBody = () => { try { return JSON.parse(sweepText.value); } catch (e) { sweepNote.replaceChildren(message('bad', 'not valid JSON: ' + e.message)); return null; } };
  // The number of trials follows the text as it is edited, before anything is queued.
  const countTrials = async () => { const b = sweepBody(); if (!b) return;
    const r = await api('POST', '/api/sweeps?dry_run=1', b);
    sweepNote.replaceChildren(message(r.ok ? 'good' : 'bad', r.ok ? `${r.data.trials} trial(s)` : r.data.error)); };
  sweepText.addEventListener('input', () => { clearTimeout(sweepTimer); sweepTimer = setTimeout(countTrials, 400); });
  const sweepCard = el('div', { class: 'card' }, el('h3', {}, 'Hyper-parameter search (grid or random)'),
    sweepForm,
    el('p', { class: 'muted' }, 'The sweep file this queues (ner-queue --sweep): name, base, and grid (field → values) or random (trials, seed, field → distribution). Edit it here for anything the form lacks.'),
    sweepText, el('div', { class: 'row' },
      el('button', { id: 'sweep-count', type: 'button', onclick: countTrials }, 'Count trials'),
      el('button', { id: 'sweep-queue', class: 'primary', onclick: async () => { const b = sweepBody(); if (!b) return;
        if (!(await confirmDo('Queue this sweep?'))) return;
        const r = await api('POST', '/api/sweeps', b);
        if (r.ok) location.hash = '#/jobs?sweep=' + enc(r.data.sweep_id);
        else sweepNote.replaceChildren(message('bad', r.data.error)); } }, 'Queue sweep')), sweepNote);
  // Retraining from a registered model.
  const from = el('input', { id: 'rt-from', placeholder: 'NAME, NAME@ALIAS, NAME:VERSION' });
  const rtTrain = el('input', { id: 'rt-train', placeholder: 'new train file (optional)' });
  const rtEpochs = el('input', { id: 'rt-epochs', placeholder: 'epochs (optional)', type: 'number' });
  const rtNote = el('div');
  const retrainCard = el('div', { class: 'card' }, el('h3', {}, 'Retrain a registered model'),
    el('div', { class: 'row' }, from, rtTrain, rtEpochs, el('button', { id: 'rt-go', onclick: async () => {
      const b = { from: from.value.trim() };
      if (rtTrain.value.trim()) b.train = rtTrain.value.trim();
      if (rtEpochs.value) b.epochs = Number(rtEpochs.value);
      const r = await api('POST', '/api/retrain', b);
      if (r.ok) location.hash = '#/job/' + enc(r.data.job_id); else rtNote.replaceChildren(message('bad', r.data.error));
    } }, 'Queue retraining')), rtNote);
  main.replaceChildren(el('h2', {}, 'New training'), note, form, el('h2', {}, 'More ways to train'), sweepCard, retrainCard);
  writeSweep();
  rendered('new');
}

// ---- Models -----------------------------------------------------------------------------------

async function modelsPage(main) {
  const r = await api('GET', '/api/models');
  const rows = r.data.models.map((m) => el('tr', {}, el('td', {}, link('#/model/' + enc(m.name), m.name)),
    el('td', { class: 'num' }, m.versions), el('td', { class: 'num' }, m.latest),
    el('td', { class: 'num' }, m.production_version === null || m.production_version === undefined ? '–' : m.production_version),
    el('td', { class: 'num' }, pct(m.dev_f1)), el('td', {}, Object.keys(m.aliases || {}).map((a) => el('span', { class: 'chip' }, a))),
    el('td', {}, when(m.registered_at))));
  main.replaceChildren(el('h2', {}, 'Models'), el('table', { id: 'models' },
    el('thead', {}, el('tr', {}, ['Name', 'Versions', 'Latest', 'Production', 'Dev F1 (production or latest)', 'Aliases', 'Last registered'].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows)));
  S.refresh = () => modelsPage(main);
  rendered('models');
}

function chart(title, series, opts) {
  // series: [{points: [[x, y]], cls: 'a'|'b', label}]
  const W = 420, H = 220, L = 46, R = 12, T = 24, B = 30;
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs, 1), x1 = Math.max(...xs, 2);
  let y0 = opts.y0 !== undefined ? opts.y0 : Math.min(...ys), y1 = opts.y1 !== undefined ? opts.y1 : Math.max(...ys);
  if (!(y1 > y0)) { y1 = y0 + 1; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), Y = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  const g = sv('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, 'data-chart': opts.id, role: 'img', 'aria-label': title });
  g.append(sv('text', { x: L, y: 14 }, title));
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    g.append(sv('line', { class: 'grid', x1: L, x2: W - R, y1: Y(y), y2: Y(y) }), sv('text', { x: 4, y: Y(y) + 3 }, opts.pct ? (100 * y).toFixed(1) : y.toPrecision(3)));
  }
  g.append(sv('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }), sv('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  const step = Math.max(1, Math.ceil((x1 - x0) / 10));
  for (let x = Math.ceil(x0); x <= x1; x += step) g.append(sv('text', { x: X(x) - 3, y: H - B + 14 }, x));
  g.append(sv('text', { x: W / 2 - 14, y: H - 4 }, 'epoch'));
  for (const s of series) {
    if (!s.points.length) continue;
    g.append(sv('polyline', { class: 'line-' + s.cls, points: s.points.map((p) => X(p[0]) + ',' + Y(p[1])).join(' ') }));
    for (const p of s.points) g.append(sv('circle', { class: s.cls === 'a' ? 'pt' : 'pt-b', cx: X(p[0]), cy: Y(p[1]), r: 3 }, sv('title', {}, `${s.label} epoch ${p[0]}: ${p[1].toFixed(4)}`)));
  }
  return g;
}

function typeBars(perType) {
  const types = Object.keys(perType || {}).sort();
  const W = Math.max(300, 60 + types.length * 90), H = 220, L = 36, B = 30, T = 24;
  const g = sv('svg', { class: 'chart', width: W, height: H, 'data-chart': 'types' });
  g.append(sv('text', { x: L, y: 14 }, 'Dev scores per type:'));
  [['precision', 'bar-p'], ['recall', 'bar-r'], ['F1', 'bar-f']].forEach(([k, cls], j) => g.append(
    sv('rect', { class: cls, x: L + 112 + j * 72, y: 6, width: 10, height: 10 }), sv('text', { x: L + 126 + j * 72, y: 14 }, k)));
  const Y = (v) => H - B - v * (H - T - B);
  for (let i = 0; i <= 4; i++) g.append(sv('line', { class: 'grid', x1: L, x2: W, y1: Y(i / 4), y2: Y(i / 4) }), sv('text', { x: 4, y: Y(i / 4) + 3 }, (25 * i) + '%'));
  types.forEach((t, i) => {
    const m = perType[t], x = L + 10 + i * 90;
    [['precision', 'bar-p'], ['recall', 'bar-r'], ['f1', 'bar-f']].forEach(([k, cls], j) => {
      const v = Math.max(0, Math.min(1, m[k] || 0));
      g.append(sv('rect', { class: cls, x: x + j * 22, y: Y(v), width: 20, height: (H - B) - Y(v) }, sv('title', {}, `${t} ${k} ${(100 * v).toFixed(2)}`)));
    });
    g.append(sv('text', { x: x + 16, y: H - B + 14 }, t));
  });
  return g;
}

async function modelPage(main, name, params) {
  const r = await api('GET', '/api/models/' + enc(name));
  if (!r.ok) { main.replaceChildren(message('bad', r.data.error)); return; }
  const m = r.data;
  const byId = Object.fromEntries(m.versions.map((v) => [v.model_id, v]));
  const aliasOf = {};
  for (const [a, id] of Object.entries(m.aliases)) (aliasOf[id] = aliasOf[id] || []).push(a);
  const chosen = params.get('v') || m.aliases.production || (m.versions[0] || {}).model_id;
  const cmp = params.get('cmp') || '';
  const note = el('div', { id: 'model-note' });
  const promote = async (v) => {
    if (!(await confirmDo(`Point ${name}@production at version ${v.version} (${v.model_id})?`))) return;
    const p = await api('POST', `/api/models/${enc(name)}/promote`, { model: v.model_id, alias: 'production' });
    note.replaceChildren(message(p.ok ? 'good' : 'bad', p.ok ? `production → version ${v.version}` : p.data.error));
    if (p.ok) modelPage(main, name, params);
  };
  // A hundred versions a page: a name may have thousands, and a table's layout grows with its rows.
  const per = 100;
  let vpage = Math.max(0, Math.floor(m.versions.findIndex((v) => v.model_id === chosen) / per));
  const versionRow = (v) => el('tr', { dataset: { model: v.model_id }, class: v.model_id === chosen ? 'sel' : '' },
    el('td', { class: 'num' }, link('#/model/' + enc(name) + '?v=' + enc(v.model_id), String(v.version))),
    el('td', { class: 'mono' }, v.model_id), el('td', {}, v.status),
    el('td', { class: 'num' }, pct(v.dev_f1)), el('td', { class: 'num' }, pct(v.test_f1)),
    el('td', { class: 'num' }, bytes(v.bytes)), el('td', { class: 'mono', title: v.sha256 || '' }, (v.sha256 || '').slice(0, 12)),
    el('td', { class: 'mono' }, v.parent_id || ''),
    el('td', { class: 'mono' }, v.sweep_id ? link('#/sweep/' + enc(v.sweep_id), String(v.sweep_id).slice(0, 16) + '…') : ''),
    el('td', {}, when(v.created_at), v.created_by ? el('div', { class: 'muted' }, 'by ' + v.created_by) : null),
    el('td', {}, (aliasOf[v.model_id] || []).map((a) => el('span', { class: 'chip' }, a))),
    el('td', {}, can('operator') && v.status === 'registered' && m.aliases.production !== v.model_id
      ? el('button', { class: 'promote op', 'data-version': v.version, onclick: () => promote(v) }, 'Promote') : null));
  const versions = el('tbody', { id: 'versions' });
  const vinfo = el('span', { class: 'muted', id: 'versions-info' });
  const vprev = el('button', { onclick: () => { vpage -= 1; fillVersions(); } }, '← Newer');
  const vnext = el('button', { onclick: () => { vpage += 1; fillVersions(); } }, 'Older →');
  const fillVersions = () => {
    const shown = m.versions.slice(vpage * per, (vpage + 1) * per);
    versions.replaceChildren(...shown.map(versionRow));
    vinfo.textContent = `versions ${vpage * per + 1}–${vpage * per + shown.length} of ${m.versions.length.toLocaleString('en')}`;
    vprev.disabled = vpage === 0;
    vnext.disabled = (vpage + 1) * per >= m.versions.length;
  };
  fillVersions();
  const history = el('tbody', { id: 'alias-history' }, m.history.slice(0, 100).map((h) => el('tr', {},
    el('td', {}, when(h.at)), el('td', { class: 'who' }, h.who), el('td', {}, h.action), el('td', {}, h.alias),
    el('td', { class: 'mono' }, h.from_model ? (byId[h.from_model] ? 'v' + byId[h.from_model].version : h.from_model) : '–'),
    el('td', { class: 'mono' }, byId[h.to_model] ? 'v' + byId[h.to_model].version : h.to_model))));
  const rollback = can('operator') && m.aliases.production ? el('button', { id: 'rollback', class: 'danger op', onclick: async () => {
    if (!(await confirmDo(`Roll ${name}@production back to its previous target?`))) return;
    const p = await api('POST', `/api/models/${enc(name)}/rollback`, { alias: 'production' });
    note.replaceChildren(message(p.ok ? 'good' : 'bad', p.ok ? `production → version ${p.data.version}` : p.data.error));
    if (p.ok) modelPage(main, name, params);
  } }, 'Roll back production') : null;
  const detail = el('div', { id: 'detail' });
  const cmpSel = el('select', { id: 'compare', onchange: () => { location.hash = '#/model/' + enc(name) + '?v=' + enc(chosen) + (cmpSel.value ? '&cmp=' + enc(cmpSel.value) : ''); } },
    el('option', { value: '' }, 'compare with…'), m.versions.filter((v) => v.model_id !== chosen).map((v) => el('option', { value: v.model_id, selected: v.model_id === cmp }, 'version ' + v.version)));
  main.replaceChildren(el('h2', {}, 'Model ', name), note,
    el('div', { class: 'row' }, link('#/try?model=' + enc(name), 'Try it'), rollback),
    el('table', { id: 'versions-table' }, el('thead', {}, el('tr', {}, ['Version', 'Model id', 'Status', 'Dev F1', 'Test F1', 'Size', 'sha256', 'Parent', 'Sweep', 'Created', 'Aliases', ''].map((h) => el('th', {}, h)))), versions),
    el('div', { class: 'pager' }, m.versions.length > per ? [vprev, vinfo, vnext] : null),
    el('h3', {}, 'Version ', byId[chosen] ? String(byId[chosen].version) : '–', ' ', cmpSel), detail,
    el('h3', {}, 'Alias history'),
    el('table', {}, el('thead', {}, el('tr', {}, ['At', 'Who', 'Action', 'Alias', 'From', 'To'].map((h) => el('th', {}, h)))), history));
  if (chosen) {
    const [a, b] = await Promise.all([api('GET', '/api/model/' + enc(chosen)), cmp ? api('GET', '/api/model/' + enc(cmp)) : null]);
    if (a.ok) {
      const ha = a.data.history || [], hb = b && b.ok ? b.data.history || [] : [];
      const va = 'v' + a.data.version, vb = b && b.ok ? 'v' + b.data.version : '';
      const loss = [{ cls: 'a', label: va, points: ha.filter((h) => typeof h.loss === 'number').map((h) => [h.epoch, h.loss]) }];
      const f1 = [{ cls: 'a', label: va, points: ha.filter((h) => typeof h.dev_f1 === 'number').map((h) => [h.epoch, h.dev_f1]) }];
      if (hb.length) {
        loss.push({ cls: 'b', label: vb, points: hb.filter((h) => typeof h.loss === 'number').map((h) => [h.epoch, h.loss]) });
        f1.push({ cls: 'b', label: vb, points: hb.filter((h) => typeof h.dev_f1 === 'number').map((h) => [h.epoch, h.dev_f1]) });
      }
      const md = a.data.metrics || {};
      const parts = [el('div', { class: 'charts' }, chart('Training loss per epoch' + (vb ? ` (${va} solid, ${vb} dashed)` : ''), loss, { id: 'loss' }),
        chart('Dev F1 per epoch (%)', f1, { id: 'devf1', pct: true }), md.dev && md.dev.per_type ? typeBars(md.dev.per_type) : null)];
      if (!ha.length) parts.push(el('p', { class: 'muted' }, 'No history.ndjson for this version.'));
      if (b && b.ok) {
        const mb = b.data.metrics || {};
        const rowsD = [['dev F1', md.dev && md.dev.f1, mb.dev && mb.dev.f1], ['dev precision', md.dev && md.dev.precision, mb.dev && mb.dev.precision],
          ['dev recall', md.dev && md.dev.recall, mb.dev && mb.dev.recall], ['test F1', md.test && md.test.f1, mb.test && mb.test.f1]];
        for (const t of Object.keys((md.dev && md.dev.per_type) || {}).sort()) rowsD.push([t + ' F1', md.dev.per_type[t].f1, mb.dev && mb.dev.per_type && mb.dev.per_type[t] ? mb.dev.per_type[t].f1 : undefined]);
        parts.push(el('table', { id: 'diff' }, el('thead', {}, el('tr', {}, ['Metric', va, vb, 'Δ (points)'].map((h) => el('th', {}, h)))),
          el('tbody', {}, rowsD.map(([k, x, y]) => el('tr', {}, el('td', {}, k), el('td', { class: 'num' }, pct(x)), el('td', { class: 'num' }, pct(y)),
            el('td', { class: 'num' }, typeof x === 'number' && typeof y === 'number' ? (100 * (y - x)).toFixed(2) : '–'))))));
      }
      detail.replaceChildren(...parts);
    } else detail.replaceChildren(message('bad', a.data.error));
  }
  S.refresh = () => modelPage(main, name, params);
  rendered('model');
}

async function sweepPage(main, id) {
  const r = await api('GET', '/api/sweeps/' + enc(id));
  if (!r.ok) { main.replaceChildren(message('bad', r.data.error)); return; }
  let desc = true;
  const trials = r.data.trials;
  const keys = [...new Set(trials.flatMap((t) => Object.keys(t.sweep_params || {})))].sort();
  const body = el('tbody', { id: 'trials' });
  const fill = () => {
    const sorted = trials.slice().sort((a, b) => ((a.score === null ? -1 : a.score) - (b.score === null ? -1 : b.score)) * (desc ? -1 : 1));
    body.replaceChildren(...sorted.map((t) => el('tr', {}, el('td', {}, link('#/model/' + enc(t.name) + '?v=' + enc(t.model_id), t.name + ':' + t.version)),
      el('td', { class: 'num' }, pct(t.score)), keys.map((k) => el('td', { class: 'num' }, JSON.stringify((t.sweep_params || {})[k]))))));
  };
  fill();
  const note = el('div');
  const plots = el('div', { class: 'charts' }, keys.map((k) => {
    const vals = trials.map((t) => (t.sweep_params || {})[k]);
    const numeric = vals.every((v) => typeof v === 'number');
    const cats = numeric ? [] : [...new Set(vals.map(String))];
    const pts = trials.filter((t) => typeof t.score === 'number').map((t) => { const v = t.sweep_params[k]; return [numeric ? v : cats.indexOf(String(v)), t.score]; });
    return pts.length ? scatter(k, pts, cats) : null;
  }));
  main.replaceChildren(el('h2', {}, 'Sweep ', el('span', { class: 'mono' }, id)), note,
    el('div', { class: 'row' }, link('#/jobs?sweep=' + enc(id), `${r.data.total_jobs} job(s)`),
      can('operator') && trials.length ? el('button', { id: 'promote-best', class: 'primary op', onclick: async () => {
        if (!(await confirmDo('Promote the trial with the best dev F1 to production?'))) return;
        const p = await api('POST', `/api/sweeps/${enc(id)}/promote-best`, { by: 'dev.f1' });
        note.replaceChildren(message(p.ok ? 'good' : 'bad', p.ok ? 'Promoted ' + (p.data.to_model || p.data.model_id) : p.data.error));
      } }, 'Promote the best') : null),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Trial'),
      el('th', { class: 'sort num', id: 'sort-f1', onclick: () => { desc = !desc; fill(); } }, 'Dev F1 ⇅'), keys.map((k) => el('th', { class: 'num' }, k)))), body),
    el('h3', {}, 'Each parameter against dev F1'), plots);
  S.refresh = () => sweepPage(main, id);
  rendered('sweep');
}

function scatter(k, pts, cats) {
  const W = 280, H = 200, L = 40, B = 28, T = 20, R = 10;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (!(x1 > x0)) { x0 -= 1; x1 += 1; } if (!(y1 > y0)) { y0 -= 0.01; y1 += 0.01; }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), Y = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  const g = sv('svg', { class: 'chart', width: W, height: H, 'data-chart': 'param-' + k });
  g.append(sv('text', { x: L, y: 13 }, k + ' vs dev F1'), sv('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }), sv('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  g.append(sv('text', { x: 2, y: Y(y1) + 3 }, (100 * y1).toFixed(1)), sv('text', { x: 2, y: Y(y0) + 3 }, (100 * y0).toFixed(1)));
  g.append(sv('text', { x: L, y: H - 8 }, cats.length ? cats[0] : String(+x0.toPrecision(3))), sv('text', { x: W - R - 40, y: H - 8 }, cats.length ? cats[cats.length - 1] : String(+x1.toPrecision(3))));
  for (const p of pts) g.append(sv('circle', { class: 'pt', cx: X(p[0]), cy: Y(p[1]), r: 4 }, sv('title', {}, `${k}=${cats.length ? cats[p[0]] : p[0]}: ${(100 * p[1]).toFixed(2)}`)));
  return g;
}

// ---- Try it -----------------------------------------------------------------------------------

async function tryPage(main, params) {
  const models = await api('GET', '/api/models');
  const names = (models.data.models || []).flatMap((m) => [m.name].concat(Object.keys(m.aliases || {}).map((a) => m.name + '@' + a)));
  const list = el('datalist', { id: 'model-names' }, names.map((n) => el('option', { value: n })));
  const model = el('input', { id: 'try-model', list: 'model-names', placeholder: 'NAME, NAME@ALIAS or NAME:VERSION', value: params.get('model') || names[0] || '' });
  const text = el('textarea', { id: 'try-text', rows: 4, placeholder: 'Type a sentence…' });
  const out = el('div', { id: 'try-out', class: 'out' });
  const legend = el('div', { id: 'try-legend', class: 'legend' });
  const json = el('pre', { id: 'try-json' });
  const note = el('div');
  const go = async () => {
    note.replaceChildren();
    const r = await api('POST', '/api/ner', { model: model.value.trim(), text: text.value });
    if (!r.ok) { note.replaceChildren(message('bad', r.data ? r.data.error : r.text)); return; }
    const labels = (r.headers.get('X-Model-Labels') || '').split(',').filter(Boolean);
    const ents = r.data;
    const cps = Array.from(text.value);
    const parts = [];
    let pos = 0;
    for (const e of ents) {
      if (e.start > pos) parts.push(cps.slice(pos, e.start).join(''));
      const i = Math.max(0, labels.indexOf(e.tag));
      parts.push(el('mark', { class: 'ent t' + (i % 8), title: `${e.tag} ${e.score.toFixed(3)}`, 'data-tag': e.tag, 'data-score': e.score },
        el('span', { class: 'etext' }, cps.slice(e.start, e.end).join('')), el('span', { class: 'lbl' }, e.tag)));
      pos = e.end;
    }
    if (pos < cps.length) parts.push(cps.slice(pos).join(''));
    out.replaceChildren(...parts);
    legend.replaceChildren(...labels.map((l, i) => el('span', {}, el('mark', { class: 'ent t' + (i % 8) }, l))));
    json.textContent = r.text;
    note.replaceChildren(el('span', { class: 'muted' }, 'model ', r.headers.get('X-Model-Id') || ''));
    document.body.dataset.tagged = String(Date.now());
  };
  main.replaceChildren(el('h2', {}, 'Try it'), list, el('div', { class: 'row' }, model, el('button', { id: 'try-go', class: 'primary', onclick: go }, 'Find entities')),
    text, note, el('h3', {}, 'Entities'), legend, out, el('h3', {}, 'JSON (what POST /ner of ner-serve answers)'), json);
  rendered('try');
}

// ---- Users and audit ----------------------------------------------------------------------------

async function usersPage(main) {
  const r = await api('GET', '/api/users');
  if (!r.ok) { main.replaceChildren(message('bad', r.data.error)); return; }
  const note = el('div', { id: 'users-note' });
  const showToken = (d) => note.replaceChildren(el('div', { class: 'msg good' }, `One-time sign-in link for ${d.name}: `,
    el('code', { id: 'signin-link' }, location.origin + d.signin)));
  const rows = r.data.users.map((u) => el('tr', {}, el('td', {}, u.name), el('td', {}, u.role), el('td', {}, u.pending_token ? 'waiting for sign-in' : ''),
    el('td', {}, when(u.created_at)), el('td', {}, u.created_by),
    el('td', {}, el('button', { onclick: async () => { if (!(await confirmDo('New sign-in link for ' + u.name + '? Their sessions end.'))) return;
      const x = await api('POST', `/api/users/${enc(u.name)}/reset`, {}); if (x.ok) showToken(x.data); else note.replaceChildren(message('bad', x.data.error)); } }, 'Reset'), ' ',
      el('button', { class: 'danger', onclick: async () => { if (!(await confirmDo('Remove ' + u.name + '?'))) return;
        const x = await api('POST', `/api/users/${enc(u.name)}/remove`, {}); if (x.ok) usersPage(main); else note.replaceChildren(message('bad', x.data.error)); } }, 'Remove'))));
  const name = el('input', { id: 'new-user', placeholder: 'name' });
  const role = el('select', { id: 'new-role' }, ['viewer', 'operator', 'admin'].map((x) => el('option', { value: x }, x)));
  main.replaceChildren(el('h2', {}, 'Users'), note,
    el('form', { class: 'row', onsubmit: async (e) => { e.preventDefault(); const x = await api('POST', '/api/users', { name: name.value.trim(), role: role.value });
      if (x.ok) { await usersPage(main); showToken(x.data); } else note.replaceChildren(message('bad', x.data.error)); } },
      name, role, el('button', { type: 'submit', class: 'primary' }, 'Add user')),
    el('table', {}, el('thead', {}, el('tr', {}, ['Name', 'Role', 'Token', 'Created', 'By', ''].map((h) => el('th', {}, h)))), el('tbody', {}, rows)));
  rendered('users');
}

async function auditPage(main) {
  const r = await api('GET', '/api/audit?limit=500');
  main.replaceChildren(el('h2', {}, 'Audit'), el('table', { id: 'audit' }, el('thead', {}, el('tr', {}, ['At', 'Who', 'Action', 'Target', 'Detail'].map((h) => el('th', {}, h)))),
    el('tbody', {}, r.data.audit.map((a) => el('tr', {}, el('td', {}, when(a.at)), el('td', {}, a.who), el('td', {}, a.action), el('td', { class: 'mono' }, a.target || ''), el('td', {}, a.detail || ''))))));
  S.refresh = () => auditPage(main);
  rendered('audit');
}

// ---- Start --------------------------------------------------------------------------------------

async function start() {
  $('#signout').addEventListener('click', async () => { await api('POST', '/api/signout', {}); if (S.es) S.es.close(); signedOut(); });
  let me;
  try { me = await api('GET', '/api/me'); } catch (e) { return; }
  if (!me.ok) { signedOut(); return; }
  S.me = me.data;
  S.csrf = me.data.csrf;
  document.body.className = S.me.role;
  $('#who').textContent = `${S.me.user} (${S.me.role})`;
  connectEvents();
  window.addEventListener('hashchange', route);
  await route();
}
start();
"""#
}
