// Unified diffs of whole files (git's format, so `git apply` and `patch -p1` take them). Written here because
// fix and pin need only this, and the changes are small: the common head and tail are stripped and the rest
// goes through Myers' O((N+M)D) algorithm on lines. Line ends are kept as written, CRLF included.

/** Lines with their terminators; a last line without one is kept as is. */
export function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", start)) {
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
  if (start < text.length) out.push(text.slice(start));
  return out;
}

type Op = { readonly type: " " | "-" | "+"; readonly line: string };

/** The edit script between two line arrays (Myers, with the common prefix and suffix taken off first). */
export function diffLines(a: readonly string[], b: readonly string[]): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  const middle = myers(x, y);
  return [
    ...a.slice(0, head).map((line) => ({ type: " " as const, line })),
    ...middle,
    ...a.slice(a.length - tail).map((line) => ({ type: " " as const, line })),
  ];
}

function myers(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (k === -d || (k !== d && (v[offset + k - 1] as number) < (v[offset + k + 1] as number)))
        x = v[offset + k + 1] as number;
      else x = (v[offset + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  trace.push(v.slice());
  // Walk back through the trace.
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 2; d >= 0 && (x > 0 || y > 0); d--) {
    const vd = trace[d] as Int32Array;
    const k = x - y;
    let prevK: number;
    if (k === -d || (k !== d && (vd[offset + k - 1] as number) < (vd[offset + k + 1] as number)))
      prevK = k + 1;
    else prevK = k - 1;
    const prevX = vd[offset + prevK] as number;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ type: " ", line: a[x - 1] as string });
      x--;
      y--;
    }
    if (d === 0) break;
    if (x === prevX) ops.push({ type: "+", line: b[y - 1] as string });
    else ops.push({ type: "-", line: a[x - 1] as string });
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    ops.push({ type: " ", line: a[x - 1] as string });
    x--;
    y--;
  }
  return ops.reverse();
}

function range(start: number, count: number): string {
  const first = count === 0 ? start : start + 1;
  return count === 1 ? `${first}` : `${first},${count}`;
}

/** A unified diff of `before` and `after`; "" when they are equal. */
export function unifiedDiff(
  before: string,
  after: string,
  fromName: string,
  toName: string,
  context = 3,
): string {
  if (before === after) return "";
  const ops = diffLines(splitLines(before), splitLines(after));
  const out: string[] = [`--- ${fromName}\n`, `+++ ${toName}\n`];
  const emit = (op: Op) => {
    out.push(`${op.type}${op.line}`);
    if (!op.line.endsWith("\n")) out.push("\n\\ No newline at end of file\n");
  };
  let i = 0;
  // Positions of each op in a and b.
  const posA: number[] = [];
  const posB: number[] = [];
  let pa = 0;
  let pb = 0;
  for (const op of ops) {
    posA.push(pa);
    posB.push(pb);
    if (op.type !== "+") pa++;
    if (op.type !== "-") pb++;
  }
  while (i < ops.length) {
    while (i < ops.length && ops[i]?.type === " ") i++;
    if (i >= ops.length) break;
    const start = Math.max(0, i - context);
    let end = i;
    // Extend the hunk while changes are within 2 * context lines of each other.
    for (;;) {
      while (end < ops.length && ops[end]?.type !== " ") end++;
      let next = end;
      while (next < ops.length && ops[next]?.type === " ") next++;
      if (next < ops.length && next - end <= 2 * context) end = next;
      else {
        end = Math.min(ops.length, end + context);
        break;
      }
    }
    const hunk = ops.slice(start, end);
    const countA = hunk.filter((o) => o.type !== "+").length;
    const countB = hunk.filter((o) => o.type !== "-").length;
    out.push(`@@ -${range(posA[start] as number, countA)} +${range(posB[start] as number, countB)} @@\n`);
    for (const op of hunk) emit(op);
    i = end;
  }
  return out.join("");
}
