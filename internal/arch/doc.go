// Package arch holds no code: its test checks the import walls of the
// repository (see DESIGN.md), so that the layers stay replaceable.
package arch
