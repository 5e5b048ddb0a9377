// Vendors the pages' browser libraries from node_modules (installed by `npm ci`) into
// public/vendor/, which nginx serves at /vendor/: no CDN, and nothing built is committed.
// Run by `invoke web.build` (and so by `invoke up` and the browser tests).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, 'public', 'vendor');

// [package, file in the package, name under /vendor/]
const files = [
  ['chart.js', 'dist/chart.umd.min.js', 'chart.umd.min.js'],
  ['chart.js', 'dist/chart.umd.min.js.map', 'chart.umd.min.js.map'],
  ['chartjs-plugin-annotation', 'dist/chartjs-plugin-annotation.min.js', 'chartjs-plugin-annotation.min.js'],
  ['web-vitals', 'dist/web-vitals.js', 'web-vitals.js'],
  ['web-vitals', 'dist/web-vitals.js.map', 'web-vitals.js.map'],
];

// Each file is written beside its place and renamed over it, and only files no longer vendored
// are removed: a page served while this runs (`invoke up`, a test) never finds one missing.
mkdirSync(vendor, { recursive: true });
const put = (name, write) => {
  const temporary = join(vendor, `.${name}.${process.pid}.tmp`);
  write(temporary);
  renameSync(temporary, join(vendor, name));
};
const notices = [];
for (const [pkg, file, name] of files) {
  const source = join(here, 'node_modules', pkg, file);
  if (!existsSync(source)) {
    console.error(`${source} is missing: run \`npm ci\` in web/ first.`);
    process.exit(1);
  }
  put(name, (temporary) => copyFileSync(source, temporary));
}
for (const pkg of new Set(files.map(([p]) => p))) {
  const { version, license } = JSON.parse(readFileSync(join(here, 'node_modules', pkg, 'package.json'), 'utf8'));
  const text = ['LICENSE', 'LICENSE.md', 'LICENSE.txt'].map((f) => join(here, 'node_modules', pkg, f)).find(existsSync);
  notices.push(`${pkg} ${version} (${license})\n\n${text ? readFileSync(text, 'utf8').trim() : ''}\n`);
}
put('LICENSES.txt', (temporary) => writeFileSync(temporary, notices.join('\n----\n\n')));
const kept = new Set([...files.map(([, , name]) => name), 'LICENSES.txt']);
for (const name of readdirSync(vendor)) {
  if (!kept.has(name) && !name.endsWith('.tmp')) rmSync(join(vendor, name), { recursive: true, force: true });
}
console.log(`vendored ${files.length} files into ${vendor}`);
