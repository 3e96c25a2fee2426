/** Where the `plinth plugins` commands look when neither a flag nor an environment variable says. */
export const DEFAULT_ROOT = "plugins"
export const DEFAULT_LOCK = "PLUGINS.lock"
