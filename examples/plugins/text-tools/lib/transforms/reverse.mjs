export const reverse = (text) => [...text].reverse().join("")
