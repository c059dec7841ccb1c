package ble

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ble/ble"
	"github.com/go-ble/ble/linux"
)

// AdapterIndex parses an adapter name, "hci0", "hci1"…, into its index.
func AdapterIndex(adapter string) (int, error) {
	digits, ok := strings.CutPrefix(adapter, "hci")
	if !ok || digits == "" || len(digits) > 5 || (len(digits) > 1 && digits[0] == '0') ||
		strings.TrimLeft(digits, "0123456789") != "" {
		return 0, fmt.Errorf("ble: bad adapter name %q: want hciN, as hciconfig or btmgmt list it (hci0)", adapter)
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n > 0xffff {
		return 0, fmt.Errorf("ble: bad adapter name %q: index out of range", adapter)
	}
	return n, nil
}

// Open opens a Bluetooth adapter, "hciN", as a GATT peripheral through
// go-ble, which takes the adapter over the HCI user channel: exclusive
// access, so the node needs CAP_NET_ADMIN and CAP_NET_RAW, and bluetoothd
// must leave that adapter alone. Opening resets the adapter.
func Open(adapter string) (Peripheral, error) {
	id, err := AdapterIndex(adapter)
	if err != nil {
		return nil, err
	}
	d, err := linux.NewDeviceWithName(AdvertisedName, ble.OptDeviceID(id))
	if err != nil {
		return nil, fmt.Errorf("ble: open %s: %w (BLE readers need a Bluetooth adapter reachable through the HCI user channel: "+
			"the node needs CAP_NET_ADMIN and CAP_NET_RAW, and bluetoothd must not manage %s, e.g. stop bluetooth.service or run it without that adapter)",
			adapter, err, adapter)
	}
	return device{d}, nil
}

// device is a go-ble Linux device as a Peripheral.
type device struct{ d *linux.Device }

func (d device) SetServices(svcs []*ble.Service) error { return d.d.SetServices(svcs) }

func (d device) Advertise(ctx context.Context, name string, uuids []ble.UUID) error {
	return d.d.AdvertiseNameAndServices(ctx, name, uuids...)
}

func (d device) Close() error { return d.d.Stop() }
