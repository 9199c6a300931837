/** Entry point of the `nimbus` CLI (bin/nimbus.js imports the bundle built from this file). */
import { run } from './program.js';

// `nimbus vm list | head` closes the pipe early: that ends the command quietly, not with a trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await run(process.argv.slice(2));
