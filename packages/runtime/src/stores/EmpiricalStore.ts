import type { SqlError } from "@effect/sql/SqlError"
import { addSample, emptyAggregate, mergeAggregates, type Moments, type ResourceAggregate, type ResourceSample } from "@plinth/domain"
import { Cause, Clock, Context, Deferred, Effect, Exit, FiberId, Layer, Option, Ref, Schedule } from "effect"
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
 * What each plugin's calls have cost. `record` folds the sample into an
 * aggregate per key held in memory: a background fiber writes what has
 * gathered in batches, one IMMEDIATE transaction each, so no call waits for
 * the disk. `get` and `list` read what has been written; `flush` waits until
 * every sample recorded before it is written (and fails if a batch could not
 * be). Closing the Layer flushes; after that, samples are ignored and `flush`
 * fails.
 */
export class EmpiricalStore extends Context.Tag("@plinth/runtime/EmpiricalStore")<
  EmpiricalStore,
  {
    readonly record: (key: EmpiricalKey, sample: ResourceSample) => Effect.Effect<void>
    /**
     * `record` as a plain call, for a caller already running an effect on a
     * hot path (the manager, once per call): one effect step less. A store
     * may leave it out; callers then use `record`.
     */
    readonly recordNow?: ((key: EmpiricalKey, sample: ResourceSample) => void) | undefined
    readonly get: (key: EmpiricalKey) => Effect.Effect<Option.Option<EmpiricalRecord>, StoreUnavailable>
    readonly list: (plugin?: string) => Effect.Effect<ReadonlyArray<EmpiricalRecord>, StoreUnavailable>
    readonly flush: Effect.Effect<void, StoreUnavailable>
  }
>() {}

export interface EmpiricalStoreOptions {
  /** Samples gathered after which the writer stops lingering and writes them; default 50,000. */
  readonly maxBatch?: number | undefined
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
 * One aggregate per key: those folded under distinct key objects with the
 * same text are merged. Callers usually pass one key object per record (the
 * manager does), so samples are folded by object as they arrive and keyed by
 * text only here, once per object per batch.
 */
const groupBatch = (byObject: ReadonlyMap<EmpiricalKey, ResourceAggregate>) => {
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
      const lingerMs = Math.max(0, options.lingerMs ?? 1000)
      // Samples recorded and not yet taken by the writer, folded per key object as they come: memory does not
      // grow with the number of samples, and none lives long enough to be promoted (bench/manager.mjs: GC).
      let pending = new Map<EmpiricalKey, ResourceAggregate>()
      let pendingCount = 0
      // Flushes waiting for the next batch to be written.
      let flushers: Array<Deferred.Deferred<void, StoreUnavailable>> = []
      // Completed when there is work (the first sample of a batch, or a flush); replaced when a batch is taken.
      let wake = Deferred.unsafeMake<void>(FiberId.none)
      // Completed by a flush or a full batch, to end the current linger at once; replaced when a batch is taken.
      let urgent = Deferred.unsafeMake<void>(FiberId.none)
      // The first failed write since the last flush: that flush reports it.
      let failure: StoreUnavailable | undefined

      const unavailable = <A, R>(effect: Effect.Effect<A, SqlError, R>) =>
        Effect.catchTag(effect, "SqlError", (e) => Effect.fail(StoreUnavailable.fromSql(path, e)))

      // Read, merge and replace inside one IMMEDIATE transaction: another process's batch cannot slip in between.
      const writeBatch = (batch: ReadonlyMap<EmpiricalKey, ResourceAggregate>) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          immediate(
            Effect.forEach(
              groupBatch(batch),
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

      /** Takes what has gathered and who waits for it, in one step: a sample or flush that comes later is the next batch's. */
      const takeBatch = Effect.sync(() => {
        const batch = { samples: pending, count: pendingCount, waiting: flushers }
        pending = new Map()
        pendingCount = 0
        flushers = []
        wake = Deferred.unsafeMake<void>(FiberId.none)
        urgent = Deferred.unsafeMake<void>(FiberId.none)
        return batch
      })

      const drainOnce = Effect.gen(function* () {
        yield* Deferred.await(wake)
        if (flushers.length === 0 && lingerMs > 0 && pendingCount < maxBatch) {
          yield* Effect.raceFirst(Effect.sleep(lingerMs), Deferred.await(urgent))
        }
        const batch = yield* takeBatch
        if (batch.count > 0) {
          const written = yield* Effect.exit(writeBatch(batch.samples))
          if (written._tag === "Failure") {
            const error = Cause.failureOption(written.cause).pipe(
              Option.getOrElse(() => new StoreUnavailable({ path, reason: Cause.pretty(written.cause).split("\n")[0] ?? "write failed" })),
            )
            failure ??= error
            yield* Effect.logWarning(`${batch.count} resource samples were not written: ${error.message}`)
          }
        }
        if (batch.waiting.length > 0) {
          const outcome = failure
          failure = undefined
          for (const done of batch.waiting) {
            if (outcome === undefined) Deferred.unsafeDone(done, Exit.void)
            else Deferred.unsafeDone(done, Exit.fail(outcome))
          }
        }
      })
      yield* Effect.forkScoped(Effect.forever(drainOnce))

      let closed = false
      const flush = Effect.suspend(() => {
        if (closed) return Effect.fail(new StoreUnavailable({ path, reason: "the empirical store was closed" }))
        const done = Deferred.unsafeMake<void, StoreUnavailable>(FiberId.none)
        flushers.push(done)
        Deferred.unsafeDone(wake, Exit.void)
        Deferred.unsafeDone(urgent, Exit.void)
        return Deferred.await(done)
      })
      // Added after the writer, so it runs before the writer is stopped: what was recorded is written on shutdown.
      // Afterwards a sample is ignored and a flush fails, rather than waiting for a writer that is gone.
      yield* Effect.addFinalizer(() =>
        Effect.ignore(Effect.timeout(flush, "30 seconds")).pipe(Effect.ensuring(Effect.sync(() => void (closed = true)))),
      )

      // Called once per plugin call: the sample is folded into its key's aggregate, no more.
      const recordNow = (key: EmpiricalKey, sample: ResourceSample): void => {
        if (closed) return
        pending.set(key, addSample(pending.get(key) ?? emptyAggregate, sample))
        pendingCount++
        if (pendingCount === 1) Deferred.unsafeDone(wake, Exit.void)
        else if (pendingCount === maxBatch) Deferred.unsafeDone(urgent, Exit.void)
      }

      return {
        record: (key, sample) => Effect.sync(() => recordNow(key, sample)),
        recordNow,
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
