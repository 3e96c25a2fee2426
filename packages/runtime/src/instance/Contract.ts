import { Effect } from "effect"
import { ActionNotFound, PluginInputError, SchemaViolation, type PluginManifest } from "@plinth/domain"
import type { Ajv as AjvClass, ErrorObject, ValidateFunction } from "ajv"

/*
 * The reviewed manifest as a contract the host enforces. A worker declares its
 * actions when it loads, but plugin code shares that process and can say
 * anything: what can be called, with what input, and what may come back is
 * decided here, on the host, from the `plugin.json` that was reviewed and
 * locked. The worker still decodes with the plugin's own Effect Schemas; this
 * check is the boundary.
 *
 * The schemas are what `JSONSchema.make` emits: draft-07, `$defs` with `$ref`
 * (Ajv's default draft), refinements such as `minimum` written beside a
 * `$ref`, and `$id`s such as "/schemas/unknown" that repeat across actions.
 */

export interface ActionContract {
  readonly streaming: boolean
  /** The input as the manifest allows it, or the input error naming every invalid field. */
  readonly checkInput: (input: unknown) => PluginInputError | undefined
  /** Undefined when the value is allowed, otherwise a one-line description of what is wrong. */
  readonly checkOutput: (value: unknown) => string | undefined
}

export interface Contract {
  /** The action as the manifest declares it: unknown names and the wrong kind of call are refused. */
  readonly action: (name: string, streaming: boolean) => ActionContract | ActionNotFound | PluginInputError
}

/*
 * One validator for the whole host, loaded on first use (commands that start
 * no worker do not pay for it). `strict: false` because the spec says unknown
 * keywords are annotations (authors may add their own through `jsonSchema`
 * annotations) and because Effect writes refinements beside `$ref`, which
 * `strictTypes` refuses; Ajv still applies those siblings. `addUsedSchema:
 * false` keeps repeated `$id`s from clashing. `allErrors` names every invalid
 * field of an input at once. `validateSchema: false` because checking a
 * schema against the draft-07 meta-schema first compiles that meta-schema
 * (~20 ms, measured), which would delay every first start before its worker
 * is spawned; `compileContract` does that check while the worker boots.
 */
let ajv: AjvClass | undefined
const loadAjv: Effect.Effect<AjvClass> = Effect.suspend(() =>
  ajv !== undefined
    ? Effect.succeed(ajv)
    : Effect.map(
        Effect.promise(() => import("ajv")),
        (module) => (ajv ??= new module.Ajv({ strict: false, allErrors: true, addUsedSchema: false, logger: false, validateSchema: false })),
      ),
)

/**
 * Compiled validators by schema object: a manifest object started again (a
 * restart, another instance) is not compiled again, and a manifest that is
 * dropped takes its validators with it. Ajv's own cache is a Map that would
 * keep every schema ever compiled, so each schema is removed from it at once.
 */
const compiled = new WeakMap<object, ValidateFunction>()

const compile = (validator: AjvClass, schema: Record<string, unknown>): ValidateFunction => {
  const known = compiled.get(schema)
  if (known !== undefined) return known
  const validate = validator.compile(schema)
  validator.removeSchema(schema)
  compiled.set(schema, validate)
  return validate
}

const unescapePointer = (segment: string) => segment.replace(/~1/g, "/").replace(/~0/g, "~")

/** The field an error is about, as the worker names fields: dotted path, "(root)" for the value itself. */
const fieldOf = (error: ErrorObject): string => {
  const path = error.instancePath === "" ? [] : error.instancePath.slice(1).split("/").map(unescapePointer)
  const params = error.params as Record<string, unknown>
  if (error.keyword === "required" && typeof params["missingProperty"] === "string") path.push(params["missingProperty"])
  if (error.keyword === "additionalProperties" && typeof params["additionalProperty"] === "string") path.push(params["additionalProperty"])
  return path.length === 0 ? "(root)" : path.join(".")
}

const problemOf = (error: ErrorObject): string => {
  switch (error.keyword) {
    case "required":
      return "is missing"
    case "additionalProperties":
      return "is not allowed here"
    default:
      return error.message ?? `fails '${error.keyword}'`
  }
}

const MAX_LISTED = 3
const MAX_TEXT = 120

const printable = (text: string) => {
  const flat = text.replace(/[\u0000-\u001f\u007f]/g, " ")
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT)}…` : flat
}

/** One line for a list of errors: the first few as `field: problem`, then how many more. */
const describeErrors = (errors: ReadonlyArray<ErrorObject>): string => {
  const lines = [...new Set(errors.map((error) => `${printable(fieldOf(error))}: ${problemOf(error)}`))]
  const listed = lines.slice(0, MAX_LISTED).join("; ")
  return lines.length > MAX_LISTED ? `${listed}; and ${lines.length - MAX_LISTED} more` : listed
}

const sortedFields = (errors: ReadonlyArray<ErrorObject>) => [...new Set(errors.map(fieldOf))].sort()

/**
 * Runs a validator. A value no JSON Schema can describe (a cycle through a
 * recursive schema overflows the stack) is refused rather than thrown.
 */
const run = (validate: ValidateFunction, value: unknown): ReadonlyArray<ErrorObject> | "unreadable" | undefined => {
  try {
    return validate(value) ? undefined : (validate.errors ?? [])
  } catch {
    return "unreadable"
  }
}

const inputError = (what: string, validate: ValidateFunction, value: unknown): PluginInputError | undefined => {
  const errors = run(validate, value)
  if (errors === undefined) return undefined
  if (errors === "unreadable") return new PluginInputError({ message: `invalid ${what}: it is not a JSON value the schema can check` })
  return new PluginInputError({ message: `invalid ${what}: ${describeErrors(errors)}`, fieldsInvalid: sortedFields(errors) })
}

const outputProblem = (validate: ValidateFunction, value: unknown): string | undefined => {
  const errors = run(validate, value)
  if (errors === undefined) return undefined
  if (errors === "unreadable") return "not a JSON value the schema can check"
  return describeErrors(errors)
}

const unusable = (plugin: string, where: string, reason: string) =>
  new SchemaViolation({ plugin, detail: `plugin.json: ${where} is not a usable JSON Schema: ${printable(reason)}` })

/** The draft `JSONSchema.make` writes; a schema that names another would be read with the wrong rules. */
const draft07 = /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/

const compileFor = (validator: AjvClass, plugin: string, where: string, schema: Record<string, unknown>) => {
  const declared = schema["$schema"]
  if (declared !== undefined && !(typeof declared === "string" && draft07.test(declared))) {
    throw unusable(plugin, where, `its $schema is ${JSON.stringify(declared)}, not draft-07`)
  }
  try {
    return compile(validator, schema)
  } catch (error) {
    throw unusable(plugin, where, error instanceof Error ? error.message : String(error))
  }
}

/** Schemas already found valid against the draft-07 meta-schema. */
const metaChecked = new WeakSet<object>()

const checkAgainstMeta = (validator: AjvClass, plugin: string, where: string, schema: Record<string, unknown>) => {
  if (metaChecked.has(schema)) return
  if (validator.validateSchema(schema) !== true) throw unusable(plugin, where, validator.errorsText(validator.errors, { dataVar: "schema" }))
  metaChecked.add(schema)
}

const trySchemas = <A>(plugin: string, body: () => A): Effect.Effect<A, SchemaViolation> =>
  Effect.try({
    try: body,
    catch: (error) => (error instanceof SchemaViolation ? error : new SchemaViolation({ plugin, detail: printable(String(error)) })),
  })

/**
 * Compiles the manifest's action schemas (once per schema object) and checks
 * every schema of the manifest, the config's included, against the draft-07
 * meta-schema. A schema that fails either makes the manifest unusable:
 * SchemaViolation.
 */
export const compileContract = (plugin: string, manifest: PluginManifest): Effect.Effect<Contract, SchemaViolation> =>
  Effect.flatMap(loadAjv, (validator) =>
    trySchemas(plugin, () => {
      // A Map, not the manifest's record: names such as "constructor" must not find Object.prototype.
      const actions = new Map<string, ActionContract>()
      if (manifest.config !== undefined) checkAgainstMeta(validator, plugin, "the config schema", manifest.config)
      for (const [name, declared] of Object.entries(manifest.actions ?? {})) {
        checkAgainstMeta(validator, plugin, `the input schema of '${name}'`, declared.input)
        checkAgainstMeta(validator, plugin, `the output schema of '${name}'`, declared.output)
        const validateInput = compileFor(validator, plugin, `the input schema of '${name}'`, declared.input)
        const validateOutput = compileFor(validator, plugin, `the output schema of '${name}'`, declared.output)
        actions.set(name, {
          streaming: declared.streaming === true,
          checkInput: (input) => inputError(`input for '${name}'`, validateInput, input),
          checkOutput: (value) => outputProblem(validateOutput, value),
        })
      }
      return {
        action: (name, streaming) => {
          const action = actions.get(name)
          if (action === undefined) return new ActionNotFound({ plugin, action: name })
          if (action.streaming !== streaming) {
            return new PluginInputError({
              message: `'${name}' is ${action.streaming ? "a streaming" : "not a streaming"} action`,
            })
          }
          return action
        },
      } satisfies Contract
    }),
  )

/**
 * Checks a config against the manifest's config schema, before any worker
 * starts. A manifest without one has nothing reviewed to check against; the
 * worker still decodes the config with the plugin's Schema.
 */
export const checkConfig = (
  plugin: string,
  manifest: PluginManifest,
  config: unknown,
): Effect.Effect<void, PluginInputError | SchemaViolation> => {
  const schema = manifest.config
  if (schema === undefined) return Effect.void
  return Effect.flatMap(loadAjv, (validator) =>
    Effect.flatMap(
      trySchemas(plugin, () => compileFor(validator, plugin, "the config schema", schema)),
      (validate) => {
        const error = inputError("config", validate, config)
        return error === undefined ? Effect.void : Effect.fail(error)
      },
    ),
  )
}
