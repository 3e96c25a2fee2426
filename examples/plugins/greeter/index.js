// A single-file plugin: one pure function, no imports.
export const greet = (name) => `Hello, ${name}!`

export default { greet }
