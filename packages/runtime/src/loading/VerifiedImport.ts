import * as nodeModule from "node:module"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { MessageChannel, type MessagePort } from "node:worker_threads"
import type { InMemoryFile } from "./PluginVerifier.js"
import { VERIFIED_PARAM, type AddLoad, type AddLoadReply } from "./VerifiedModuleProtocol.js"

/*
 * The host side of VerifiedModuleHooks: registers the hooks once per process
 * (lazily, so hosts that never load in-process pay nothing), hands each load's
 * verified files to the loader thread, then imports the entry under that load's URL.
 */

interface Hooks {
  readonly port: MessagePort
  readonly pending: Map<number, (reply: AddLoadReply) => void>
  nextId: number
}

let hooks: Hooks | undefined

const connect = (): Hooks => {
  if (hooks !== undefined) return hooks
  if (typeof nodeModule.register !== "function") {
    throw new Error("loading plugins in-process from verified bytes needs module.register (Node 20.6 or later)")
  }
  const { port1, port2 } = new MessageChannel()
  const connected: Hooks = { port: port1, pending: new Map(), nextId: 0 }
  port1.on("message", (reply: AddLoadReply) => {
    const settle = connected.pending.get(reply.id)
    connected.pending.delete(reply.id)
    // The port keeps the process alive only while a hand-over is in flight.
    if (connected.pending.size === 0) port1.unref()
    settle?.(reply)
  })
  port1.unref()
  nodeModule.register(new URL("./VerifiedModuleHooks.js", import.meta.url), { data: { port: port2 }, transferList: [port2] })
  hooks = connected
  return connected
}

const handOver = (message: Omit<AddLoad, "id">): Promise<void> => {
  const connected = connect()
  const id = connected.nextId++
  return new Promise((settle, reject) => {
    connected.pending.set(id, (reply) => (reply.error === undefined ? settle() : reject(new Error(reply.error))))
    connected.port.ref()
    connected.port.postMessage({ ...message, id } satisfies AddLoad)
  })
}

/**
 * Imports a plugin's entry from its verified files: every module of the
 * plugin comes from `files`, none from disk. The bytes stay with the loader
 * thread for the life of the process, so a dynamic import at call time is
 * served from them too.
 */
export const importVerified = async (options: {
  readonly plugin: string
  readonly dir: string
  readonly entry: string
  readonly files: ReadonlyArray<InMemoryFile>
}): Promise<unknown> => {
  const nonce = globalThis.crypto.randomUUID()
  await handOver({ nonce, plugin: options.plugin, dir: resolve(options.dir), files: options.files })
  const url = pathToFileURL(join(resolve(options.dir), options.entry))
  url.searchParams.set(VERIFIED_PARAM, nonce)
  return import(url.href)
}
