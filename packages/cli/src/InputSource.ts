import { FileSystem } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import { InvalidJsonOption, UsageError } from "./Failures.js"
import { MAX_OPTION_JSON_CHARS, parseJsonOption } from "./OperationInput.js"

/*
 * Where `invoke` takes its input from: the text of `--input`, stdin
 * (`--input -`) or a file (`--input-file PATH`). Stdin and files carry inputs
 * larger than a command line allows (Linux caps one argument at 128 KiB).
 */

/** The input text and the option it came from, for messages. */
export interface InputText {
  readonly option: "--input" | "--input-file"
  /** Where the text came from, as it prefixes a problem: "" for the option's own text, "(stdin) ", or the file's path and a space. */
  readonly origin: string
  readonly text: string
}

const MiB = 1024 * 1024
const tooLong = `is longer than ${MAX_OPTION_JSON_CHARS / MiB} MiB`

/** All of a readable stream as UTF-8 text, refusing more than the cap as it arrives (a stream may be endless). */
export const readAll = (stream: NodeJS.ReadableStream, option: InputText["option"], origin: string) =>
  Effect.tryPromise({
    try: async () => {
      const chunks: Array<Buffer> = []
      let size = 0
      for await (const chunk of stream) {
        const buffer = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array)
        size += buffer.length
        if (size > MAX_OPTION_JSON_CHARS) throw new InvalidJsonOption({ option, detail: `${origin}${tooLong}` })
        chunks.push(buffer)
      }
      return Buffer.concat(chunks).toString("utf-8")
    },
    catch: (error) =>
      error instanceof InvalidJsonOption
        ? error
        : new InvalidJsonOption({ option, detail: `${origin}cannot be read: ${error instanceof Error ? error.message : String(error)}` }),
  })

const systemReasons: Readonly<Record<string, string>> = {
  NotFound: "no such file",
  PermissionDenied: "permission denied",
}

const readFile = (path: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const origin = `${path} `
    const info = yield* fs.stat(path)
    if (info.type !== "File") return yield* new InvalidJsonOption({ option: "--input-file", detail: `${origin}is not a file` })
    if (Number(info.size) > MAX_OPTION_JSON_CHARS) return yield* new InvalidJsonOption({ option: "--input-file", detail: `${origin}${tooLong}` })
    return yield* fs.readFileString(path)
  }).pipe(
    Effect.catchTags({
      SystemError: (e) =>
        Effect.fail(new InvalidJsonOption({ option: "--input-file", detail: `${path} cannot be read: ${systemReasons[e.reason] ?? e.reason}` })),
      BadArgument: (e) => Effect.fail(new InvalidJsonOption({ option: "--input-file", detail: `${path} cannot be read: ${e.message}` })),
    }),
  )

/**
 * The input text of a call: exactly one of `--input` (`-` reads stdin) and
 * `--input-file`; neither or both is a usage error of `command`.
 */
export const inputText = (
  options: { readonly input: Option.Option<string>; readonly inputFile: Option.Option<string> },
  command: string,
  stdin: NodeJS.ReadableStream = process.stdin,
): Effect.Effect<InputText, UsageError | InvalidJsonOption, FileSystem.FileSystem> => {
  if (Option.isSome(options.input) && Option.isSome(options.inputFile)) {
    return Effect.fail(new UsageError({ message: "give the input once: --input or --input-file, not both", command }))
  }
  if (Option.isSome(options.inputFile)) {
    const path = options.inputFile.value
    return Effect.map(readFile(path), (text) => ({ option: "--input-file" as const, origin: `${path} `, text }))
  }
  if (Option.isSome(options.input)) {
    const value = options.input.value
    if (value !== "-") return Effect.succeed({ option: "--input" as const, origin: "", text: value })
    return Effect.map(readAll(stdin, "--input", "(stdin) "), (text) => ({ option: "--input" as const, origin: "(stdin) ", text }))
  }
  return Effect.fail(
    new UsageError({ message: `'${command}' needs the action's input: --input JSON, --input - (stdin) or --input-file PATH`, command }),
  )
}

/** The JSON value of the input, or an input failure naming the option and where the text came from. */
export const parseInput = (input: InputText) =>
  Either.mapLeft(parseJsonOption(input.option, input.text), (e) => new InvalidJsonOption({ option: e.option, detail: `${input.origin}${e.detail}` }))
