/** Entry point of the `nimbus` CLI (bin/nimbus.js imports the built copy of this file). */
import { run } from './program.js';

process.exitCode = await run(process.argv.slice(2));
