import {
  ActionNotFound,
  DeclarationDrift,
  InstanceFailed,
  InvokeTimeout,
  PluginFatalError,
  PluginInputError,
  PluginResourceError,
  PluginTransientError,
  ProtocolError,
  SandboxDenied,
  WorkerExited,
  WorkerKilled,
  WorkerStartFailed,
  type ErrorCategory,
  type PluginFailure,
} from "@plinth/domain"

/** One failure of each variant of the taxonomy, with the category a user should see for it. */
export const everyPluginFailure: ReadonlyArray<readonly [PluginFailure, ErrorCategory]> = [
  [new PluginInputError({ message: "the name is not known", fieldsInvalid: ["name"] }), "input"],
  [new ActionNotFound({ plugin: "showcase", action: "nope" }), "input"],
  [new PluginTransientError({ message: "the service is busy", retryAfterSeconds: 5 }), "transient"],
  [new InvokeTimeout({ plugin: "showcase", action: "slow", timeoutMillis: 300 }), "transient"],
  [new WorkerExited({ plugin: "showcase", exitCode: 3, signal: null, detail: "exited during a call" }), "transient"],
  [new PluginResourceError({ message: "not enough memory", shortfall: { resource: "memory_mb", needed: 4096, available: 512 } }), "resource"],
  [new WorkerKilled({ plugin: "showcase", exitCode: null, signal: "SIGKILL" }), "resource"],
  [new PluginFatalError({ message: "Error: a bug in the plugin" }), "fatal"],
  [new WorkerStartFailed({ plugin: "showcase", reason: "crashed before it was ready", stderrTail: "boom\nat line 1", exitCode: 1, signal: null }), "fatal"],
  [new InstanceFailed({ plugin: "showcase", instance: "showcase#1", restarts: 3, lastError: "exited" }), "fatal"],
  [new SandboxDenied({ permission: "fs-read", resource: "/etc/passwd" }), "fatal"],
  [new ProtocolError({ detail: "not a message" }), "fatal"],
  [new DeclarationDrift({ plugin: "showcase", differences: ["action 'greet': description differs from the manifest"] }), "fatal"],
]
