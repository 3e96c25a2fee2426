import { wordsOf } from "../words.mjs"

export const slugify = (text) => wordsOf(text.toLowerCase().replace(/[^a-z0-9\s-]/g, "")).join("-")
