/* Switchboard agents' console. Plain ES2020, no dependencies, no build step.
 * Every text from the server is put on the page with textContent, never as HTML.
 *
 * Stable hooks for tests:
 *   #signin-form #signin-name #signin-password #signin-submit #signin-error  sign-in form
 *   #whoami (signed-in name) #signout (button)  #console-error (role=alert, API errors)
 *   #announce (aria-live=polite)  #not-agent (shown to accounts off the allowlist)
 *   #queue       list; each item li.ticket[data-ticket="<id>"] (.urgent if urgent,
 *                .mine if held by me) holding one button; #queue-empty when none
 *   #ticket      the ticket view; data-ticket="<id>" of the open ticket ("" for none)
 *   #ticket-title #ticket-meta #ticket-status (status and holder)
 *   #details     dl of collected details
 *   #transcript  each line li.line[data-from="customer|bot|agent"] with .who, .text, time
 *   #notes       each note li.note with .text;  #history  each event li.event with .what
 *   #reply-text #reply-send  #note-text #note-send  #claim #release #close
 *
 * API: /console/api/… (sign-in, sign-out, me, queue, tickets/{id}[/claim|release|close|reply|note],
 * events: Server-Sent Events of {ticket, kind}). Every POST carries X-CSRF-Token.
 */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const API = '/console/api/';
  let me = null;
  let open = null;       // id of the open ticket
  let current = null;    // its last detail
  let source = null;     // EventSource
  let poll = null;

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const clear = (e) => { while (e.firstChild) e.removeChild(e.firstChild); };
  const time = (ms) => new Date(ms).toLocaleString();
  const waited = (m) => (m < 60 ? `${m} min` : m < 2880 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${Math.floor(m / 1440)} days`);
  const say = (text) => { $('announce').textContent = ''; setTimeout(() => { $('announce').textContent = text; }, 50); };
  const fail = (text) => { $('console-error').textContent = text || ''; };

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, body) {
    const init = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      if (me) init.headers['X-CSRF-Token'] = me.csrf;
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (e) {
      throw new ApiError(0, 'The server cannot be reached; trying again shortly.');
    }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      if (res.status === 401 && path !== 'sign-in') signedOut();
      let msg = data.error || `The server answered ${res.status}.`;
      if (res.status === 429 && res.headers.get('Retry-After')) msg += ` (wait ${res.headers.get('Retry-After')} s)`;
      throw new ApiError(res.status, msg);
    }
    return data;
  }

  function signedOut() {
    me = null; open = null; current = null;
    if (source) { source.close(); source = null; }
    if (poll) { clearInterval(poll); poll = null; }
    clear($('queue'));
    $('desk').hidden = true; $('not-agent').hidden = true; $('signout').hidden = true;
    $('whoami').textContent = '';
    $('signin').hidden = false;
    $('signin-name').focus();
  }

  async function start() {
    try {
      me = await api('me');
    } catch (e) {
      if (e.status !== 401) fail(e.message);
      signedOut();
      return;
    }
    $('signin').hidden = true;
    $('signout').hidden = false;
    $('whoami').textContent = `Signed in as ${me.name}`;
    fail('');
    if (!me.is_agent) {
      $('not-agent-actor').textContent = me.actor;
      $('not-agent').hidden = false;
      return;
    }
    $('desk').hidden = false;
    await refresh();
    listen();
    poll = setInterval(refresh, 15000);
  }

  function listen() {
    if (source) source.close();
    source = new EventSource(API + 'events');
    source.onopen = () => refresh();
    source.onmessage = (ev) => {
      let hint = {};
      try { hint = JSON.parse(ev.data); } catch (e) { return; }
      refresh(hint);
    };
    // The browser reconnects by itself; a stream refused (signed out) is noticed by the polls.
  }

  async function refresh(hint) {
    if (!me || !me.is_agent) return;
    try {
      await loadQueue();
      if (open !== null && (!hint || hint.ticket === null || hint.ticket === open)) await loadTicket(open, hint);
      if (hint && hint.ticket !== null && hint.ticket !== open && hint.kind === 'opened') say(`New ticket #${hint.ticket}`);
    } catch (e) {
      if (e.status !== 401) fail(e.message);
    }
  }

  // The queue is updated in place, keyed by ticket id: an item the agent is pointing at or has
  // focused stays the same element through live updates, so a click is never lost to a redraw.
  async function loadQueue() {
    const data = await api('queue');
    const q = $('queue');
    const items = new Map(Array.from(q.children).map((li) => [li.dataset.ticket, li]));
    data.tickets.forEach((t, i) => {
      const id = String(t.id);
      let li = items.get(id);
      items.delete(id);
      if (!li) {
        li = el('li', 'ticket');
        li.dataset.ticket = id;
        const b = el('button');
        b.type = 'button';
        b.addEventListener('click', () => select(t.id));
        li.appendChild(b);
      }
      li.classList.toggle('urgent', !!t.urgent);
      li.classList.toggle('mine', !!(t.holder && t.holder.id === me.actor));
      li.classList.toggle('selected', id === String(open));
      const b = li.firstChild;
      if (id === String(open)) b.setAttribute('aria-current', 'true'); else b.removeAttribute('aria-current');
      const lines = [
        `${t.urgent ? 'Urgent' : ''}|#${t.id}|${t.customer_name}`,
        `${t.reason} · ${t.channel} · ${t.priority}`,
        `${t.holder ? 'with ' + t.holder.name : 'waiting'} · ${waited(t.waiting_minutes)}`,
      ];
      const sig = lines.join('\n');
      if (b.dataset.sig !== sig) {
        b.dataset.sig = sig;
        clear(b);
        const head = el('span', 'head');
        if (t.urgent) head.appendChild(el('span', 'badge urgent', 'Urgent'));
        head.appendChild(el('span', 'id', `#${t.id}`));
        head.appendChild(el('span', 'name', t.customer_name));
        b.appendChild(head);
        b.appendChild(el('span', 'sub', lines[1]));
        b.appendChild(el('span', 'sub', lines[2]));
      }
      if (q.children[i] !== li) q.insertBefore(li, q.children[i] || null);
    });
    for (const gone of items.values()) gone.remove();
    $('queue-empty').hidden = data.tickets.length > 0;
    $('queue-count').textContent = `(${data.tickets.length})`;
  }

  async function select(id) {
    open = id;
    fail('');
    try {
      await loadTicket(id);
      await loadQueue();
      $('ticket-title').focus();
    } catch (e) {
      fail(e.message);
    }
  }

  async function loadTicket(id, hint) {
    let d;
    try {
      d = await api(`tickets/${id}`);
    } catch (e) {
      if (e.status === 404) { open = null; showTicket(null); }
      throw e;
    }
    if (open !== id) return;
    const before = current;
    current = d;
    showTicket(d);
    if (hint && before && hint.kind) say(`Ticket #${id}: ${hint.kind.replace(/_/g, ' ')}`);
  }

  function showTicket(d) {
    const view = $('ticket');
    view.dataset.ticket = d ? String(d.ticket.id) : '';
    $('ticket-none').hidden = !!d;
    $('ticket-body').hidden = !d;
    if (!d) return;
    const t = d.ticket;
    const title = $('ticket-title');
    title.textContent = `#${t.id} ${t.customer_name}`;
    title.tabIndex = -1;
    const meta = $('ticket-meta');
    clear(meta);
    const pairs = [['Customer', `${t.customer_name} (${t.customer_id})`], ['Channel', t.channel], ['Language', t.language],
      ['Reason', t.reason], ['Priority', t.priority], ['Opened', `${time(t.created_at)} (${waited(t.waiting_minutes)} ago)`]];
    for (const [k, v] of pairs) { meta.appendChild(el('dt', '', k)); meta.appendChild(el('dd', k === 'Priority' && t.urgent ? 'urgent' : '', v)); }
    const mine = t.holder && t.holder.id === me.actor;
    $('ticket-status').textContent = t.status === 'assigned' ? `Assigned to ${mine ? 'you' : t.holder.name}` : t.status === 'queued' ? 'Waiting in the queue' : 'Closed';
    $('ticket-status').dataset.status = t.status;
    const closed = t.status === 'closed';
    const other = t.status === 'assigned' && !mine;
    $('claim').disabled = closed || other || mine;
    $('release').disabled = !mine;
    $('close').disabled = closed || other;
    $('reply-send').disabled = closed || other;
    const details = $('details');
    clear(details);
    if (!t.fields.length) details.appendChild(el('dd', 'muted', 'None collected.'));
    for (const f of t.fields) { details.appendChild(el('dt', '', f.name)); details.appendChild(el('dd', '', f.value)); }
    const tr = $('transcript');
    const atEnd = tr.scrollTop + tr.clientHeight >= tr.scrollHeight - 8;
    clear(tr);
    for (const l of d.transcript) {
      const li = el('li', `line ${l.from}`);
      li.dataset.from = l.from;
      const who = l.from === 'agent' ? (l.agent ? l.agent.name : 'Agent') : l.from === 'bot' ? 'Bot' : t.customer_name;
      li.appendChild(el('span', 'who', who));
      const when = el('time', 'at', time(l.at));
      when.dateTime = new Date(l.at).toISOString();
      li.appendChild(when);
      li.appendChild(el('p', 'text', l.text));
      tr.appendChild(li);
    }
    if (atEnd) tr.scrollTop = tr.scrollHeight;
    const notes = $('notes');
    clear(notes);
    if (!d.notes.length) notes.appendChild(el('li', 'muted', 'No notes.'));
    for (const n of d.notes) {
      const li = el('li', 'note');
      li.appendChild(el('span', 'who', `${n.agent.name} · ${time(n.at)}`));
      li.appendChild(el('p', 'text', n.text));
      notes.appendChild(li);
    }
    const h = $('history');
    clear(h);
    for (const e of d.history) {
      const li = el('li', 'event');
      li.appendChild(el('span', 'at', time(e.at)));
      li.appendChild(el('span', 'what', ` ${e.what}${e.agent ? ' by ' + e.agent.name : ''}`));
      if (e.text) li.appendChild(el('p', 'text', e.text));
      h.appendChild(li);
    }
  }

  async function act(action, body, done) {
    if (open === null) return;
    const id = open;
    fail('');
    try {
      await api(`tickets/${id}/${action}`, body || {});
      if (done) done();
      say(`Ticket #${id}: ${action} done`);
      await loadTicket(id);
      await loadQueue();
    } catch (e) {
      fail(e.message);
      if (e.status === 409) { try { await loadTicket(id); } catch (x) { /* shown above */ } }
    }
  }

  function wire() {
    $('signin-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = $('signin-name').value.trim();
      const password = $('signin-password').value;
      $('signin-error').textContent = '';
      if (!name || !password) { $('signin-error').textContent = 'Enter your name and password.'; return; }
      $('signin-submit').disabled = true;
      try {
        await api('sign-in', { name, password });
        $('signin-password').value = '';
        await start();
      } catch (e) {
        $('signin-error').textContent = e.message;
        $('signin-password').select();
      } finally {
        $('signin-submit').disabled = false;
      }
    });
    $('signout').addEventListener('click', async () => {
      try { await api('sign-out', {}); } catch (e) { /* ended anyway */ }
      signedOut();
    });
    $('claim').addEventListener('click', () => act('claim'));
    $('release').addEventListener('click', () => act('release'));
    $('close').addEventListener('click', () => act('close'));
    $('reply-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = $('reply-text').value;
      if (!text.trim()) return;
      act('reply', { text }, () => { $('reply-text').value = ''; });
    });
    $('note-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = $('note-text').value;
      if (!text.trim()) return;
      act('note', { text }, () => { $('note-text').value = ''; });
    });
    // Ctrl+Enter sends.
    for (const [area, form] of [['reply-text', 'reply-form'], ['note-text', 'note-form']]) {
      $(area).addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); $(form).requestSubmit(); }
      });
    }
  }

  wire();
  start();
})();
