// Times are shown in the browser's time zone with its offset: 2026-11-30 17:05 +01:00.

const pad = (n) => String(n).padStart(2, '0');

// The browser's offset from UTC at the instant d, as +01:00.
export function offsetOf(d) {
  const minutes = -d.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `${minutes >= 0 ? '+' : '-'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

// An RFC 3339 time from the API, as the browser's local time with its offset; with
// { seconds: true } to the second (readings a few seconds apart must not look alike).
export function showTime(rfc3339, { seconds = false } = {}) {
  if (!rfc3339) return '';
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) return rfc3339;
  const clock = seconds
    ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock} ${offsetOf(d)}`;
}

// A date (2026-12-31) and a time (17:05) typed in the browser's zone, as RFC 3339 with the
// zone's offset at that instant; null when the date is not a date.
export function localToRfc3339(date, time) {
  const dm = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || '');
  const tm = /^(\d{2}):(\d{2})/.exec(time || '00:00');
  if (!dm || !tm) return null;
  const [y, m, d] = [Number(dm[1]), Number(dm[2]), Number(dm[3])];
  const [hh, mm] = [Number(tm[1]), Number(tm[2])];
  const local = new Date(y, m - 1, d, hh, mm, 0, 0);
  return `${dm[1]}-${dm[2]}-${dm[3]}T${pad(hh)}:${pad(mm)}:00${offsetOf(local)}`;
}
