// `npm test`: runs vitest, then prints one plain closing line ("N passed, N failed, N skipped")
// that any CI log reader understands, and exits with vitest's status.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

mkdirSync('out', { recursive: true });
const results = 'out/test-results.json';
const r = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${results}`, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
if (existsSync(results)) {
  const j = JSON.parse(readFileSync(results, 'utf8'));
  console.log(
    `\n${j.numPassedTests} passed, ${j.numFailedTests} failed, ${j.numPendingTests + j.numTodoTests} skipped`,
  );
}
process.exit(r.status ?? 1);
