#!/usr/bin/env node
// A committed shim so that the bin link exists at install time, before the build has produced dist/.
import { main } from '../dist/bin.js';
process.exitCode = await main(process.argv.slice(2));
