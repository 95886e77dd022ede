// Bundles the page into server/assets/ (app.js, app.css, index.html), which are committed and
// embedded into the server binary. `node build.mjs --check` builds in memory and fails when the
// committed files differ from what the sources produce.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

const here = path.dirname(fileURLToPath(import.meta.url))
const outDir = path.resolve(here, '..', 'server', 'assets')
const check = process.argv.includes('--check')
const banner = '/* Nox Sync canvas page. Generated from web/ by `npm run build`; do not edit. */'

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js', 'app-style': 'src/app.css' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  platform: 'browser',
  legalComments: 'eof',
  banner: { js: banner, css: banner },
  outdir: 'out',
  write: false,
  logLevel: 'warning'
})

const files = new Map()
for (const file of result.outputFiles) {
  const name = path.basename(file.path) === 'app-style.css' ? 'app.css' : path.basename(file.path)
  files.set(name, file.text)
}
files.set('index.html', fs.readFileSync(path.join(here, 'index.html'), 'utf8'))
for (const name of ['app.js', 'app.css', 'index.html']) {
  if (!files.has(name)) throw new Error(`esbuild produced no ${name}`)
}

if (check) {
  const stale = []
  for (const [name, text] of files) {
    const target = path.join(outDir, name)
    const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null
    if (current !== text) stale.push(name)
  }
  if (stale.length) {
    console.error(`server/assets is out of date with web/ (${stale.join(', ')}): run \`cd web && npm ci && npm run build\` and commit server/assets/`)
    process.exit(1)
  }
  console.log('server/assets is up to date with web/')
} else {
  fs.mkdirSync(outDir, { recursive: true })
  for (const [name, text] of files) {
    fs.writeFileSync(path.join(outDir, name), text)
    console.log(`server/assets/${name}  ${(Buffer.byteLength(text) / 1024).toFixed(1)} KiB`)
  }
}
