// The status bar: the log's last sequence and pending deliveries from `/healthz`, and
// live rates from two scrapes of `/metrics` in a row. Without metrics (404, or no
// answer) it says "metrics unavailable" and keeps showing what `/healthz` gives.

import { count, rate } from './format.js';
import { rates, reading } from './metrics.js';

/** How often the bar is refreshed. */
const INTERVAL_MS = 5000;

/** The shortest time between the two scrapes a rate is computed from. */
const MIN_RATE_WINDOW_MS = 2000;

/** Starts polling; returns `{stop, refresh}` (`refresh` reads both again now). */
export function startStatus(api) {
  const bar = document.getElementById('status');
  const fields = {
    seq: document.getElementById('status-seq'),
    pending: document.getElementById('status-pending'),
    events: document.getElementById('status-events'),
    success: document.getElementById('status-success'),
    failure: document.getElementById('status-failure'),
    note: document.getElementById('status-note'),
  };
  bar.hidden = false;
  let previous = null;
  let stopped = false;
  let timer = null;

  const note = (text) => {
    fields.note.textContent = text;
    fields.note.hidden = text === '';
  };

  async function refresh() {
    const notes = [];
    try {
      const health = await api.get('healthz');
      fields.seq.textContent = count(health.data.last_seq);
      fields.pending.textContent = count(health.data.pending_deliveries);
    } catch (error) {
      const reason = error.data && error.data.log && error.data.log.reason;
      notes.push(reason ? `log not writable: ${reason}` : 'health unavailable');
      if (error.data && error.data.last_seq !== undefined) {
        fields.seq.textContent = count(error.data.last_seq);
      }
    }
    let scrape = { status: 0, text: '' };
    try {
      scrape = await api.text('metrics');
    } catch {
      scrape = { status: 0, text: '' };
    }
    if (scrape.status === 200) {
      const current = reading(scrape.text, Date.now());
      if (current.pending !== null) fields.pending.textContent = count(current.pending);
      if (previous !== null && current.at - previous.at < MIN_RATE_WINDOW_MS) {
        // Too soon after the last scrape for a steady rate: keep the rates shown.
        note(notes.join(' · '));
        return;
      }
      if (previous !== null) {
        const r = rates(previous, current);
        fields.events.textContent = rate(r.events);
        fields.success.textContent = rate(r.success);
        fields.failure.textContent = rate(r.failure);
        fields.failure.classList.toggle('alarm', (r.failure ?? 0) > 0);
      } else {
        for (const key of ['events', 'success', 'failure']) fields[key].textContent = '…';
      }
      previous = current;
    } else {
      previous = null;
      for (const key of ['events', 'success', 'failure']) fields[key].textContent = '–';
      notes.push('metrics unavailable');
    }
    bar.dataset.metrics = scrape.status === 200 ? 'available' : 'unavailable';
    note(notes.join(' · '));
  }

  async function loop() {
    if (stopped) return;
    await refresh();
    if (!stopped) timer = setTimeout(loop, INTERVAL_MS);
  }
  loop();

  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      bar.hidden = true;
    },
    refresh: () => (stopped ? Promise.resolve() : refresh()),
  };
}
