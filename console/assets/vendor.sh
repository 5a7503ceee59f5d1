#!/bin/sh
# Copies the console's third-party browser code, as pinned by
# package-lock.json, into ../static/vendor, which the binary embeds. Run it
# after changing a version in package.json and commit what it writes:
# building Switchboard needs no Node.
set -eu
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund
out=../static/vendor
rm -rf "$out"
mkdir -p "$out"
cp node_modules/htmx.org/dist/htmx.min.js "$out/htmx.min.js"
cp node_modules/htmx-ext-sse/dist/sse.min.js "$out/sse.min.js"
cp node_modules/uplot/dist/uPlot.iife.min.js "$out/uPlot.iife.min.js"
cp node_modules/uplot/dist/uPlot.min.css "$out/uPlot.min.css"
{
	for pkg in htmx.org htmx-ext-sse uplot; do
		version=$(node -p "require('./node_modules/$pkg/package.json').version")
		printf '%s %s\n\n' "$pkg" "$version"
		cat "node_modules/$pkg/LICENSE"
		printf '\n\n'
	done
} >"$out/LICENSES.txt"
