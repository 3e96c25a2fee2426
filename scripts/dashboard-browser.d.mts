import type { Browser } from "playwright-core"

export declare const chromiumPath: string
export declare const chromiumArgs: ReadonlyArray<string>
export declare const launchChromium: () => Promise<Browser>

export interface Serve {
  readonly url: string
  readonly token: string
  readonly pid: number | undefined
  readonly stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly output: () => { stdout: string; stderr: string }
}

export declare const startServe: (options: {
  cwd: string
  dataDir: string
  args?: ReadonlyArray<string>
  timeoutMillis?: number
}) => Promise<Serve>

export declare const post: (server: Serve, path: string, body: unknown) => Promise<{ status: number; body: any }>
