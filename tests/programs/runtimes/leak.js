// A Node.js program of ordinary objects for SECONDS seconds: `leak` keeps
// every batch of records it makes in a global list (about 1.5 MiB/s that
// the collector can never free); `steady` makes the same batches and lets
// them go (garbage the collector reclaims).
// Usage: node leak.js leak|steady SECONDS
const [mode, seconds] = [process.argv[2], Number(process.argv[3])];
const kept = [];
const deadline = Date.now() + seconds * 1000;
let n = 0;
function batch() {
  const records = [];
  for (let i = 0; i < 100; i++) {
    records.push({ id: n++, name: "record-" + n, payload: "x".repeat(100) + n });
  }
  return records;
}
const timer = setInterval(() => {
  const b = batch();
  if (mode === "leak") kept.push(b);
  if (Date.now() >= deadline) clearInterval(timer);
}, 10);
