#!/usr/bin/env node
// The CLI runs from the transpiled tree (built by `npm ci` through the prepare script).
await import('../dist/src/cli/main.js');
