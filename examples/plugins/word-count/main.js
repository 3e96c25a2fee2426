const count = (text) => ({
  words: text.split(/\s+/).filter((w) => w.length > 0).length,
  characters: [...text].length,
})

export default { count }
