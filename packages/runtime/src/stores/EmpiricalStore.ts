import type { SqlError } from "@effect/sql/SqlError"
import { addSample, emptyAggregate, mergeAggregates, type Moments, type ResourceAggregate, type ResourceSample } from "@plinth/domain"
import { Cause, Chunk, Clock, Context, Deferred, Effect, Exit, FiberId, Layer, Option, Queue, Ref, Schedule } from "effect"
import { StoreDatabase } from "./Database.js"
import { StoreUnavailable } from "./StoreErrors.js"

/** One record per plugin, exact plugin contents (its tree digest) and config (the hash of its canonical JSON). */
export interface EmpiricalKey {
  readonly plugin: string
  readonly pluginDigest: string
  readonly configHash: string
}

export interface EmpiricalRecord extends EmpiricalKey {
  readonly aggregate: ResourceAggregate
  /** Epoch milliseconds of the last batch folded in. */
  readonly updatedAt: number
}

/**
 * What each plugin's calls have cost. `record` only queues the sample: a
 * background fiber folds queued samples into their records in batches, one
 * IMMEDIATE transaction each, so no call waits for the disk. `get` and `list`
 * read what has been written; `flush` waits until every sample recorded
 * before it is written (and fails if a batch could not be). Closing the
 * Layer flushes; after that, samples are ignored and `flush` fails.
 */
export class EmpiricalStore extends Context.Tag("@plinth/runtime/EmpiricalStore")<
  EmpiricalStore,
  {
    readonly record: (key: EmpiricalKey, sample: ResourceSample) => Effect.Effect<void>
    readonly get: (key: EmpiricalKey) => Effect.Effect<Option.Option<EmpiricalRecord>, StoreUnavailable>
    readonly list: (plugin?: string) => Effect.Effect<ReadonlyArray<EmpiricalRecord>, StoreUnavailable>
    readonly flush: Effect.Effect<void, StoreUnavailable>
  }
>() {}

export interface EmpiricalStoreOptions {
  /**
   * Most samples folded per transaction; default 50,000. A batch is folded
   * per key in memory first, so a transaction writes one row per distinct
   * key however many samples it holds.
   */
  readonly maxBatch?: number | undefined
  /** Samples waiting beyond this are dropped (and counted) rather than growing memory without bound; default 100,000. */
  readonly maxPending?: number | undefined
  /**
   * How long the writer lets samples gather after the first one before it
   * writes them in one transaction; a flush (or a full batch) cuts it short.
   * Default 1 s. A transaction runs on this process's event loop
   * (better-sqlite3 is synchronous) and its commit waits for an fsync
   * (5–180 ms measured on a busy disk): written per call, or even every
   * 100 ms, that stalled every call in flight, and the manager ran at a
   * third to a fifth of the bare instance's throughput (bench/manager.mjs).
   * What a crash can lose is the last second of samples: statistics.
   */
  readonly lingerMs?: number | undefined
}

/** The longest a batch write blocks this process's event loop waiting for another process's lock, per try. */
const LOCK_WAIT_MS = 25

type Item =
  | { readonly _tag: "Sample"; readonly key: EmpiricalKey; readonly sample: ResourceSample }
  | { readonly _tag: "Flush"; readonly done: Deferred.Deferred<void, StoreUnavailable> }

interface Row {
  readonly plugin: string
  readonly plugin_digest: string
  readonly config_hash: string
  readonly calls: number
  readonly successes: number
  readonly wall_count: number
  readonly wall_mean: number
  readonly wall_m2: number
  readonly wall_max: number
  readonly cpu_count: number
  readonly cpu_mean: number
  readonly cpu_m2: number
  readonly cpu_max: number
  readonly rss_count: number
  readonly rss_mean: number
  readonly rss_m2: number
  readonly rss_max: number
  readonly updated_at: number
}

const moments = (count: number, mean: number, m2: number, max: number): Moments => ({ count, mean, m2, max })

const fromRow = (r: Row): EmpiricalRecord => ({
  plugin: r.plugin,
  pluginDigest: r.plugin_digest,
  configHash: r.config_hash,
  aggregate: {
    count: r.calls,
    successes: r.successes,
    wallMs: moments(r.wall_count, r.wall_mean, r.wall_m2, r.wall_max),
    cpuMs: moments(r.cpu_count, r.cpu_mean, r.cpu_m2, r.cpu_max),
    peakRssBytes: moments(r.rss_count, r.rss_mean, r.rss_m2, r.rss_max),
  },
  updatedAt: r.updated_at,
})

const toRow = (key: EmpiricalKey, a: ResourceAggregate, now: number): Row => ({
  plugin: key.plugin,
  plugin_digest: key.pluginDigest,
  config_hash: key.configHash,
  calls: a.count,
  successes: a.successes,
  wall_count: a.wallMs.count,
  wall_mean: a.wallMs.mean,
  wall_m2: a.wallMs.m2,
  wall_max: a.wallMs.max,
  cpu_count: a.cpuMs.count,
  cpu_mean: a.cpuMs.mean,
  cpu_m2: a.cpuMs.m2,
  cpu_max: a.cpuMs.max,
  rss_count: a.peakRssBytes.count,
  rss_mean: a.peakRssBytes.mean,
  rss_m2: a.peakRssBytes.m2,
  rss_max: a.peakRssBytes.max,
  updated_at: now,
})

const keyText = (k: EmpiricalKey) => JSON.stringify([k.plugin, k.pluginDigest, k.configHash])

/**
 * Folds a batch of samples into one aggregate per key: the pure half of a
 * write. Callers usually pass one key object per record (the manager does),
 * so samples are grouped by that object first and by the key's text only
 * once per distinct object: a batch may hold tens of thousands of samples.
 */
const groupBatch = (samples: ReadonlyArray<{ readonly key: EmpiricalKey; readonly sample: ResourceSample }>) => {
  const byObject = new Map<EmpiricalKey, ResourceAggregate>()
  for (const { key, sample } of samples) byObject.set(key, addSample(byObject.get(key) ?? emptyAggregate, sample))
  const groups = new Map<string, { key: EmpiricalKey; aggregate: ResourceAggregate }>()
  for (const [key, aggregate] of byObject) {
    const k = keyText(key)
    const g = groups.get(k)
    groups.set(k, { key, aggregate: g === undefined ? aggregate : mergeAggregates(g.aggregate, aggregate) })
  }
  return [...groups.values()]
}

export const EmpiricalStoreLive = (options: EmpiricalStoreOptions = {}): Layer.Layer<EmpiricalStore, never, StoreDatabase> =>
  Layer.scoped(
    EmpiricalStore,
    Effect.gen(function* () {
      const { path, sql, immediate } = yield* StoreDatabase
      const maxBatch = Math.max(1, options.maxBatch ?? 50_000)
      const maxPending = Math.max(1, options.maxPending ?? 100_000)
      const lingerMs = Math.max(0, options.lingerMs ?? 1000)
      const queue = yield* Queue.unbounded<Item>()
      // Completed by a flush, to end the current linger at once; replaced before each batch is taken.
      let urgent = Deferred.unsafeMake<void>(FiberId.none)
      // Flushes queued and not yet reached: while any waits, the writer does not linger.
      let flushesWaiting = 0
      let pending = 0
      let dropped = 0
      // The first failed write since the last flush: that flush reports it.
      let failure: StoreUnavailable | undefined

      const unavailable = <A, R>(effect: Effect.Effect<A, SqlError, R>) =>
        Effect.catchTag(effect, "SqlError", (e) => Effect.fail(StoreUnavailable.fromSql(path, e)))

      // Read, merge and replace inside one IMMEDIATE transaction: another process's batch cannot slip in between.
      const writeBatch = (samples: ReadonlyArray<{ readonly key: EmpiricalKey; readonly sample: ResourceSample }>) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          immediate(
            Effect.forEach(
              groupBatch(samples),
              ({ key, aggregate }) =>
                Effect.flatMap(
                  sql<Row>`SELECT * FROM empirical_records
                    WHERE plugin = ${key.plugin} AND plugin_digest = ${key.pluginDigest} AND config_hash = ${key.configHash}`,
                  (rows) => {
                    const merged = rows[0] === undefined ? aggregate : mergeAggregates(fromRow(rows[0]).aggregate, aggregate)
                    return sql`INSERT OR REPLACE INTO empirical_records ${sql.insert(toRow(key, merged, now) as unknown as Record<string, number | string>)}`
                  },
                ),
              { discard: true },
            ),
            { lockWaitMs: LOCK_WAIT_MS },
          ),
        ).pipe(
          // Wait for another process's lock in short blocking slices and asynchronous pauses, for up to ~15 s.
          Effect.retry(Schedule.exponential("20 millis").pipe(Schedule.either(Schedule.spaced("500 millis")), Schedule.upTo("15 seconds"))),
          unavailable,
        )

      const drainOnce = Effect.gen(function* () {
        const first = yield* Queue.take(queue)
        if (first._tag === "Sample" && lingerMs > 0 && flushesWaiting === 0 && (yield* Queue.size(queue)) < maxBatch - 1) {
          yield* Effect.raceFirst(Effect.sleep(lingerMs), Deferred.await(urgent))
        }
        // A flush offered from here on signals the new one; one offered before is in this batch (or the queue holds a full batch).
        urgent = Deferred.unsafeMake<void>(FiberId.none)
        const items = [first, ...Chunk.toReadonlyArray(yield* Queue.takeUpTo(queue, maxBatch - 1))]
        const samples: Array<Extract<Item, { readonly _tag: "Sample" }>> = []
        for (const item of items) if (item._tag === "Sample") samples.push(item)
        if (samples.length > 0) {
          const written = yield* Effect.exit(writeBatch(samples))
          pending -= samples.length
          if (written._tag === "Failure") {
            const error = Cause.failureOption(written.cause).pipe(
              Option.getOrElse(() => new StoreUnavailable({ path, reason: Cause.pretty(written.cause).split("\n")[0] ?? "write failed" })),
            )
            failure ??= error
            yield* Effect.logWarning(`${samples.length} resource samples were not written: ${error.message}`)
          }
        }
        if (dropped > 0) {
          yield* Effect.logWarning(`${dropped} resource samples were dropped: more than ${maxPending} were waiting to be written`)
          dropped = 0
        }
        for (const item of items) {
          if (item._tag !== "Flush") continue
          flushesWaiting--
          if (failure === undefined) yield* Deferred.succeed(item.done, undefined)
          else yield* Deferred.fail(item.done, failure)
          failure = undefined
        }
      })
      yield* Effect.forkScoped(Effect.forever(drainOnce))

      let closed = false
      const flush = Effect.suspend(() =>
        closed
          ? Effect.fail(new StoreUnavailable({ path, reason: "the empirical store was closed" }))
          : Effect.flatMap(Deferred.make<void, StoreUnavailable>(), (done) =>
              Effect.sync(() => void flushesWaiting++).pipe(
                Effect.zipRight(Queue.offer(queue, { _tag: "Flush", done })),
                Effect.zipRight(Effect.sync(() => Deferred.unsafeDone(urgent, Exit.void))),
                Effect.zipRight(Deferred.await(done)),
              ),
            ),
      )
      // Added after the writer, so it runs before the writer is stopped: what was recorded is written on shutdown.
      // Afterwards a sample is ignored and a flush fails, rather than waiting for a writer that is gone.
      yield* Effect.addFinalizer(() =>
        Effect.ignore(Effect.timeout(flush, "30 seconds")).pipe(Effect.ensuring(Effect.sync(() => void (closed = true)))),
      )

      return {
        // Called once per plugin call: a plain offer to the unbounded queue, no more.
        record: (key, sample) =>
          Effect.sync(() => {
            if (closed) return
            if (pending >= maxPending) {
              dropped++
              return
            }
            pending++
            queue.unsafeOffer({ _tag: "Sample", key, sample })
          }),
        get: (key) =>
          sql<Row>`SELECT * FROM empirical_records
            WHERE plugin = ${key.plugin} AND plugin_digest = ${key.pluginDigest} AND config_hash = ${key.configHash}`.pipe(
            Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromRow)),
            unavailable,
          ),
        list: (plugin) =>
          (plugin === undefined
            ? sql<Row>`SELECT * FROM empirical_records ORDER BY plugin, plugin_digest, config_hash`
            : sql<Row>`SELECT * FROM empirical_records WHERE plugin = ${plugin} ORDER BY plugin_digest, config_hash`
          ).pipe(Effect.map((rows) => rows.map(fromRow)), unavailable),
        flush,
      }
    }),
  )

/** The same behaviour in memory for tests of code that records samples: folded at once, nothing survives the Layer. */
export const EmpiricalStoreMemory: Layer.Layer<EmpiricalStore> = Layer.effect(
  EmpiricalStore,
  Effect.gen(function* () {
    const records = yield* Ref.make(new Map<string, EmpiricalRecord>())
    const sorted = (rs: Iterable<EmpiricalRecord>) => [...rs].sort((a, b) => (keyText(a) < keyText(b) ? -1 : keyText(a) > keyText(b) ? 1 : 0))
    return {
      record: (key, sample) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Ref.update(records, (m) => {
            const before = m.get(keyText(key))?.aggregate ?? emptyAggregate
            const { plugin, pluginDigest, configHash } = key
            return new Map(m).set(keyText(key), { plugin, pluginDigest, configHash, aggregate: addSample(before, sample), updatedAt: now })
          }),
        ),
      get: (key) => Effect.map(Ref.get(records), (m) => Option.fromNullable(m.get(keyText(key)))),
      list: (plugin) => Effect.map(Ref.get(records), (m) => sorted([...m.values()].filter((r) => plugin === undefined || r.plugin === plugin))),
      flush: Effect.void,
    }
  }),
)
