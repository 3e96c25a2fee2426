#!/usr/bin/env node
// A committed launcher rather than the compiled file, so that npm can link the
// `plinth` command at install time, before `prepare` has compiled dist/.
import "../dist/bin.js"
