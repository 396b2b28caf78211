// Turning the API's values into text for people, and people's input into API values.

/** Seconds between year 0 and the Unix epoch: Kazoo's documents use Gregorian seconds. */
const GREGORIAN_OFFSET = 62167219200;

/** A Date from Gregorian seconds (attempt `timestamp`s). */
export function fromGregorian(seconds) {
  return new Date((Number(seconds) - GREGORIAN_OFFSET) * 1000);
}

/** `2026-12-03 18:45:12 UTC`. */
export function utc(date) {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return '–';
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function ago(date, now = new Date()) {
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (Number.isNaN(seconds)) return '';
  if (seconds < 0) return 'in the future';
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** A rate per second: `0`, `0.4`, `12.5`, `1,234`. */
export function rate(perSecond) {
  if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond)) return '–';
  if (perSecond === 0) return '0';
  if (perSecond < 100) return perSecond.toFixed(1);
  return Math.round(perSecond).toLocaleString('en');
}

/** A count with thousands separators. */
export function count(n) {
  return Number.isFinite(Number(n)) ? Number(n).toLocaleString('en') : '–';
}

/**
 * Reads a time typed by a person: Unix seconds (digits), or anything `Date` reads, such
 * as RFC 3339 (`2026-12-03T17:00:00Z`; without a zone it is the browser's local time).
 * Returns Unix seconds, or null when it cannot be read.
 */
export function parseWhen(text) {
  const value = String(text).trim();
  if (value === '') return null;
  if (/^\d+$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}

/** RFC 3339 in UTC, whole seconds: what the time fields are filled with. */
export function rfc3339(date) {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** `n thing` / `n things`. */
export function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${n === 1 ? one : many}`;
}
