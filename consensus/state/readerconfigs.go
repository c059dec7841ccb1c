package state

import (
	"errors"
	"strings"
	"time"

	"lintel/consensus/command"
	"lintel/consensus/state/readerconfig"
)

// ReaderConfig is an imported reader configuration. Its name (the Blue
// Mobile ID configuration name) is unique in the account.
type ReaderConfig struct {
	ID        string              `json:"id"`
	AccountID string              `json:"account_id"`
	SiteID    string              `json:"site_id"`
	Name      string              `json:"name"`
	Source    string              `json:"source"` // the file as imported
	Settings  readerconfig.Config `json:"settings"`
	CreatedAt time.Time           `json:"created_at"`
}

func readerConfigKey(accountID, name string) string {
	return accountID + "\x00" + strings.ToLower(name)
}

func (s *State) readerConfigByName(accountID, name string) (ReaderConfig, bool) {
	id, ok := s.readerConfigNames.Get(readerConfigKey(accountID, name))
	if !ok {
		return ReaderConfig{}, false
	}
	rc, ok := s.ReaderConfigs.Get(id)
	return rc, ok
}

func (s *State) applyCreateReaderConfig(c command.Command, b *command.CreateReaderConfig, ch *changes) (any, *Rejection) {
	site, ok := s.Sites.Get(b.SiteID)
	if !ok || site.AccountID != b.AccountID {
		return nil, reject(NotFound, "site_not_found", "site_id", "site %s does not exist", b.SiteID)
	}
	cfg, err := readerconfig.Parse([]byte(b.Source))
	if err != nil {
		field := ""
		var list readerconfig.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			field = list[0].Key
		}
		return nil, reject(Invalid, "invalid_reader_config", field, "%v", err)
	}
	if _, dup := s.readerConfigByName(b.AccountID, cfg.Name); dup {
		return nil, reject(Conflict, "duplicate_name", "name", "a reader configuration named %q already exists in this account; Blue Mobile ID configuration names are unique", cfg.Name)
	}
	if _, ok := s.ReaderConfigs.Get(b.ID); ok {
		return nil, reject(Conflict, "duplicate_id", "id", "a reader configuration with id %s already exists", b.ID)
	}
	rc := ReaderConfig{ID: b.ID, AccountID: b.AccountID, SiteID: b.SiteID, Name: cfg.Name, Source: b.Source, Settings: cfg, CreatedAt: c.At.UTC()}
	s.ReaderConfigs.Put(rc.ID, rc)
	s.readerConfigNames.Put(readerConfigKey(rc.AccountID, rc.Name), rc.ID)
	ch.put("reader_configs", rc.ID)
	return rc, nil
}

func (s *State) applyDeleteReaderConfig(b *command.DeleteReaderConfig, ch *changes) (any, *Rejection) {
	rc, ok := s.ReaderConfigs.Get(b.ID)
	if !ok || rc.AccountID != b.AccountID {
		return nil, reject(NotFound, "reader_config_not_found", "", "reader configuration %s does not exist", b.ID)
	}
	// Seed 003: only when no configurator or user is associated with it.
	n := 0
	for _, c := range s.Cards.All() {
		if c.AccountID == rc.AccountID && strings.EqualFold(c.ReaderConfig, rc.Name) {
			n++
		}
	}
	if n > 0 {
		return nil, reject(Conflict, "reader_config_in_use", "", "reader configuration %q is used by %d cards; delete them first", rc.Name, n)
	}
	s.ReaderConfigs.Delete(rc.ID)
	s.readerConfigNames.Delete(readerConfigKey(rc.AccountID, rc.Name))
	ch.del("reader_configs", rc.ID)
	return nil, nil
}
