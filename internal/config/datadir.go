package config

import "path/filepath"

// defaultDataDir is where the embedded store lives when dataDir is absent.
const defaultDataDir = "atrax-data"

// DataDirPath returns the directory of the embedded store. A relative
// dataDir is taken relative to the config file's directory, not the working
// directory, so that "atrax serve -f /etc/atrax/config.json" finds the same
// data whatever directory it is started from. Without dataDir it is
// "atrax-data" beside the config file, or in the working directory when the
// config did not come from a file.
func (c *Config) DataDirPath() string {
	dir := c.DataDir
	if dir == "" {
		dir = defaultDataDir
	}
	if filepath.IsAbs(dir) || c.Path == "" {
		return filepath.Clean(dir)
	}
	return filepath.Join(filepath.Dir(c.Path), dir)
}
