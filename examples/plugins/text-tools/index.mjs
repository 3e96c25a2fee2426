import { slugify } from "./lib/transforms/slug.mjs"
import { reverse } from "./lib/transforms/reverse.mjs"
import { wordsOf } from "./lib/words.mjs"

export default { slugify, reverse, wordsOf }
