import { setFlagsFromString } from "node:v8"

/*
 * The worker's first statement (bootstrap.ts imports this module first).
 *
 * V8 refuses a code cache made under other V8 flags than its own, and Node
 * ships code caches for its builtin modules made under the default flags. A
 * worker starts with `--max-old-space-size` (its heap cap, Sandbox.ts), so it
 * compiled every builtin module it loads (node:net, the module loaders, ...)
 * from source: about 10 ms of every start, measured. V8 sizes the heap from
 * that flag once, when the process starts; putting the flag back to its
 * default here leaves the heap's limit as it was (a heap bomb still dies at
 * the cap: test/hostile/isolation-memory.test.ts) and makes the flags V8
 * compares with a cache the defaults again. Node's caches are then accepted,
 * and so is the runtime's (`scripts/bundle-worker.mjs` makes it under the
 * default flags), whatever a plugin's heap cap.
 */
setFlagsFromString("--max-old-space-size=0")
