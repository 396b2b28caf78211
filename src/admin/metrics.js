// Reading `GET /metrics` (the Prometheus text format) and turning two scrapes into rates.

/**
 * Parses Prometheus text exposition into samples `{name, labels, value}`. Comments
 * (`# HELP`, `# TYPE`) and lines it cannot read are skipped.
 */
export function parsePrometheus(text) {
  const samples = [];
  for (const raw of String(text).split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseLine(line);
    if (sample !== null) samples.push(sample);
  }
  return samples;
}

function parseLine(line) {
  const nameEnd = line.search(/[{\s]/);
  if (nameEnd <= 0) return null;
  const name = line.slice(0, nameEnd);
  let rest = line.slice(nameEnd);
  const labels = {};
  if (rest.startsWith('{')) {
    const parsed = parseLabels(rest);
    if (parsed === null) return null;
    Object.assign(labels, parsed.labels);
    rest = rest.slice(parsed.length);
  }
  const value = parseValue(rest.trim().split(/\s+/)[0]);
  return value === null ? null : { name, labels, value };
}

/** `{a="x",b="y\"z"}` → labels and how many characters they took. */
function parseLabels(text) {
  const labels = {};
  let i = 1;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === ',') i += 1;
    if (text[i] === '}') return { labels, length: i + 1 };
    const eq = text.indexOf('=', i);
    if (eq < 0 || text[eq + 1] !== '"') return null;
    const key = text.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j += 1) {
      if (text[j] === '\\' && j + 1 < text.length) {
        j += 1;
        value += text[j] === 'n' ? '\n' : text[j];
      } else {
        value += text[j];
      }
    }
    if (j >= text.length) return null;
    labels[key] = value;
    i = j + 1;
  }
  return null;
}

function parseValue(text) {
  if (text === undefined) return null;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  const value = Number(text);
  return Number.isNaN(value) && text !== 'NaN' ? null : value;
}

/** The sum of every sample of `name` whose labels include `match`; null if none. */
export function total(samples, name, match = {}) {
  let sum = null;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (!Object.entries(match).every(([k, v]) => sample.labels[k] === v)) continue;
    sum = (sum ?? 0) + sample.value;
  }
  return sum;
}

/** What the page shows of one scrape, taken at `at` (ms). */
export function reading(text, at) {
  const samples = parsePrometheus(text);
  return {
    at,
    events: total(samples, 'piston_events_accepted_total'),
    success: total(samples, 'piston_deliveries_total', { result: 'success' }),
    failure: total(samples, 'piston_deliveries_total', { result: 'failure' }),
    pending: total(samples, 'piston_pending_deliveries'),
    lastSeq: total(samples, 'piston_log_last_seq'),
  };
}

/**
 * Per-second rates between two readings: `{events, success, failure}`, each null when
 * a counter is missing or went backwards (the daemon restarted between the scrapes).
 */
export function rates(before, after) {
  const seconds = (after.at - before.at) / 1000;
  const per = (key) => {
    const a = before[key];
    const b = after[key];
    if (a === null || b === null || seconds <= 0 || b < a) return null;
    return (b - a) / seconds;
  };
  return { events: per('events'), success: per('success'), failure: per('failure') };
}
