package state

import (
	"strings"
	"time"
)

// ReaderConfig is an imported reader configuration. Its name (the Blue
// Mobile ID configuration name) is unique in the account.
type ReaderConfig struct {
	ID        string    `json:"id"`
	AccountID string    `json:"account_id"`
	SiteID    string    `json:"site_id"`
	Name      string    `json:"name"`
	Source    string    `json:"source"` // the file as imported
	CreatedAt time.Time `json:"created_at"`
}

func readerConfigKey(accountID, name string) string {
	return accountID + "\x00" + strings.ToLower(name)
}

func (s *State) readerConfigByName(accountID, name string) (ReaderConfig, bool) {
	id, ok := s.readerConfigNames[readerConfigKey(accountID, name)]
	if !ok {
		return ReaderConfig{}, false
	}
	rc, ok := s.ReaderConfigs[id]
	return rc, ok
}
