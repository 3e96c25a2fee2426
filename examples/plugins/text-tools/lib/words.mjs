export const wordsOf = (text) => text.split(/\s+/).filter((w) => w.length > 0)
