// piscina's task for the queue benchmark's baseline: the same no-op as the plugin's action.
export default function echo(input) {
  return input
}
