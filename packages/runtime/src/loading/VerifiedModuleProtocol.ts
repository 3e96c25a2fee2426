/** What the host and the loader thread's VerifiedModuleHooks say to each other over their MessagePort. */

/** The query parameter that marks a URL as a module of one verified load. */
export const VERIFIED_PARAM = "plinth-verified"

/** Host → hooks: the verified files of one load. */
export interface AddLoad {
  readonly id: number
  readonly nonce: string
  readonly plugin: string
  /** The plugin folder, absolute. */
  readonly dir: string
  readonly files: ReadonlyArray<{ readonly path: string; readonly bytes: Uint8Array }>
}

/** Hooks → host: the load is registered (or why not). */
export interface AddLoadReply {
  readonly id: number
  readonly error?: string
}
