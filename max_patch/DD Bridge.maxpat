{
	"patcher": {
		"fileversion": 1,
		"appversion": {
			"major": 8,
			"minor": 6,
			"revision": 0,
			"architecture": "x64",
			"modernui": 1
		},
		"classnamespace": "box",
		"rect": [
			100.0,
			100.0,
			1000.0,
			600.0
		],
		"openinpresentation": 1,
		"default_fontsize": 10.0,
		"default_fontname": "Arial Bold",
		"gridsize": [
			8.0,
			8.0
		],
		"description": "Dance Diffusion variations of the selected clip, rendered by the dd-bridge service",
		"boxes": [
			{
				"box": {
					"id": "obj-thisdevice",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"bang",
						"int",
						"int"
					],
					"patching_rect": [
						20,
						20,
						90,
						22
					],
					"text": "live.thisdevice"
				}
			},
			{
				"box": {
					"id": "obj-deferlow",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						50,
						60,
						22
					],
					"text": "deferlow"
				}
			},
			{
				"box": {
					"id": "obj-init",
					"maxclass": "message",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						80,
						40,
						22
					],
					"text": "init"
				}
			},
			{
				"box": {
					"id": "obj-js",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 7,
					"outlettype": [
						"",
						"",
						"",
						"",
						"",
						"",
						""
					],
					"patching_rect": [
						300,
						300,
						140,
						22
					],
					"text": "js dd_bridge.js",
					"saved_object_attributes": {
						"filename": "dd_bridge.js",
						"parameter_enable": 0
					}
				}
			},
			{
				"box": {
					"id": "obj-udpsend",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						300,
						360,
						150,
						22
					],
					"text": "udpsend 127.0.0.1 9000"
				}
			},
			{
				"box": {
					"id": "obj-udpreceive",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						500,
						220,
						100,
						22
					],
					"text": "udpreceive 9001"
				}
			},
			{
				"box": {
					"id": "obj-prepend-osc",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						500,
						250,
						80,
						22
					],
					"text": "prepend osc"
				}
			},
			{
				"box": {
					"id": "obj-midiin",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						"int"
					],
					"patching_rect": [
						700,
						20,
						45,
						22
					],
					"text": "midiin"
				}
			},
			{
				"box": {
					"id": "obj-midiout",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						760,
						80,
						50,
						22
					],
					"text": "midiout"
				}
			},
			{
				"box": {
					"id": "obj-midiselect",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 8,
					"outlettype": [
						"",
						"",
						"",
						"",
						"",
						"",
						"",
						"int"
					],
					"patching_rect": [
						700,
						50,
						150,
						22
					],
					"text": "midiselect @ch all @note 0"
				}
			},
			{
				"box": {
					"id": "obj-prepend-note",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						700,
						110,
						80,
						22
					],
					"text": "prepend note"
				}
			},
			{
				"box": {
					"id": "obj-noise",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						20,
						140,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						8,
						4,
						44,
						48
					],
					"parameter_enable": 1,
					"varname": "Noise",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Noise",
							"parameter_shortname": "Noise",
							"parameter_type": 0,
							"parameter_modmode": 0,
							"parameter_mmin": 0.0,
							"parameter_mmax": 1.0,
							"parameter_unitstyle": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0.5
							],
							"parameter_info": "How far each variation moves from the clip: 0 keeps it, 1 is a new sound"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-count",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						80,
						140,
						44,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						60,
						8,
						40,
						15
					],
					"parameter_enable": 1,
					"varname": "Count",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Count",
							"parameter_shortname": "Count",
							"parameter_type": 1,
							"parameter_modmode": 0,
							"parameter_mmin": 1,
							"parameter_mmax": 16,
							"parameter_unitstyle": 0,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								4
							],
							"parameter_info": "How many variations a press renders"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-steps",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						140,
						140,
						44,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						60,
						30,
						40,
						15
					],
					"parameter_enable": 1,
					"varname": "Steps",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Steps",
							"parameter_shortname": "Steps",
							"parameter_type": 1,
							"parameter_modmode": 0,
							"parameter_mmin": 5,
							"parameter_mmax": 200,
							"parameter_unitstyle": 0,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								25
							],
							"parameter_info": "Sampler steps: more is slower and cleaner"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-target",
					"maxclass": "live.menu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"",
						"",
						"float"
					],
					"patching_rect": [
						200,
						140,
						100,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						8,
						56,
						92,
						15
					],
					"parameter_enable": 1,
					"varname": "Target",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Target",
							"parameter_shortname": "Target",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"Below source",
								"DD Variations track"
							],
							"parameter_mmax": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Where new clips go (Live 12.0.5 and later)"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-label-count",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						80,
						120,
						40,
						18
					],
					"text": "Count",
					"presentation": 1,
					"presentation_rect": [
						104,
						6,
						40,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-label-steps",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						140,
						120,
						40,
						18
					],
					"text": "Steps",
					"presentation": 1,
					"presentation_rect": [
						104,
						28,
						40,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-noise",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						200,
						80,
						22
					],
					"text": "prepend noise"
				}
			},
			{
				"box": {
					"id": "obj-prepend-count",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						80,
						200,
						80,
						22
					],
					"text": "prepend count"
				}
			},
			{
				"box": {
					"id": "obj-prepend-steps",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						140,
						200,
						80,
						22
					],
					"text": "prepend steps"
				}
			},
			{
				"box": {
					"id": "obj-prepend-target",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						200,
						200,
						80,
						22
					],
					"text": "prepend target"
				}
			},
			{
				"box": {
					"id": "obj-button-vary",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						320,
						140,
						60,
						18
					],
					"text": "Vary",
					"presentation": 1,
					"presentation_rect": [
						150,
						8,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Vary",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Vary",
							"parameter_shortname": "Vary",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "Variations of the selected audio clip (a MIDI note does the same)",
							"parameter_initial_enable": 0
						}
					},
					"mode": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-vary",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						320,
						170,
						60,
						22
					],
					"text": "prepend vary"
				}
			},
			{
				"box": {
					"id": "obj-button-generate",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						410,
						140,
						60,
						18
					],
					"text": "Generate",
					"presentation": 1,
					"presentation_rect": [
						150,
						30,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Generate",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Generate",
							"parameter_shortname": "Generate",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "New sounds from the model alone",
							"parameter_initial_enable": 0
						}
					},
					"mode": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-generate",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						410,
						170,
						60,
						22
					],
					"text": "prepend generate"
				}
			},
			{
				"box": {
					"id": "obj-button-interpolate",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						500,
						140,
						60,
						18
					],
					"text": "Interpolate",
					"presentation": 1,
					"presentation_rect": [
						150,
						52,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Interpolate",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Interpolate",
							"parameter_shortname": "Interpolate",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "Steps between the two audio clips selected last",
							"parameter_initial_enable": 0
						}
					},
					"mode": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-interpolate",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						500,
						170,
						60,
						22
					],
					"text": "prepend interpolate"
				}
			},
			{
				"box": {
					"id": "obj-status",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						300,
						420,
						300,
						20
					],
					"text": "starting",
					"presentation": 1,
					"presentation_rect": [
						220,
						4,
						330,
						18
					]
				}
			},
			{
				"box": {
					"id": "obj-files",
					"maxclass": "textedit",
					"numinlets": 1,
					"numoutlets": 4,
					"outlettype": [
						"",
						"",
						"int",
						""
					],
					"patching_rect": [
						620,
						420,
						300,
						80
					],
					"text": "New files appear here",
					"presentation": 1,
					"presentation_rect": [
						220,
						26,
						330,
						140
					],
					"readonly": 1
				}
			},
			{
				"box": {
					"id": "obj-about",
					"maxclass": "comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						20,
						240,
						240,
						20
					],
					"text": "DD Bridge: Dance Diffusion variations of the selected clip",
					"presentation": 1,
					"presentation_rect": [
						8,
						150,
						210,
						18
					]
				}
			},
			{
				"box": {
					"id": "obj-button-cancel",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						590,
						140,
						60,
						18
					],
					"text": "Cancel",
					"presentation": 1,
					"presentation_rect": [
						150,
						74,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Cancel",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Cancel",
							"parameter_shortname": "Cancel",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "Stops this device's renders (the service drops its queued and prefetched work)",
							"parameter_initial_enable": 0
						}
					},
					"mode": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-cancel",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						590,
						170,
						80,
						22
					],
					"text": "prepend cancel"
				}
			},
			{
				"box": {
					"id": "obj-trigger-low",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						860,
						140,
						44,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						60,
						80,
						40,
						15
					],
					"parameter_enable": 1,
					"varname": "Trigger Low",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Trigger Low",
							"parameter_shortname": "Trigger Low",
							"parameter_type": 1,
							"parameter_modmode": 0,
							"parameter_mmin": 0,
							"parameter_mmax": 127,
							"parameter_unitstyle": 8,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "The lowest note that starts a render (taken out of the MIDI stream; every other note passes through). C-2 alone by default"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-label-trigger-low",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						860,
						120,
						44,
						18
					],
					"text": "Trigger",
					"presentation": 1,
					"presentation_rect": [
						104,
						78,
						44,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-trigger-low",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						860,
						200,
						100,
						22
					],
					"text": "prepend trigger_low"
				}
			},
			{
				"box": {
					"id": "obj-trigger-high",
					"maxclass": "live.numbox",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						920,
						140,
						44,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						60,
						102,
						40,
						15
					],
					"parameter_enable": 1,
					"varname": "Trigger High",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Trigger High",
							"parameter_shortname": "Trigger High",
							"parameter_type": 1,
							"parameter_modmode": 0,
							"parameter_mmin": 0,
							"parameter_mmax": 127,
							"parameter_unitstyle": 8,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "The highest note that starts a render (taken out of the MIDI stream; every other note passes through). C-2 alone by default"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-label-trigger-high",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						920,
						120,
						44,
						18
					],
					"text": "to",
					"presentation": 1,
					"presentation_rect": [
						104,
						100,
						44,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-trigger-high",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						920,
						200,
						100,
						22
					],
					"text": "prepend trigger_high"
				}
			},
			{
				"box": {
					"id": "obj-button-extend",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						1000,
						140,
						60,
						18
					],
					"text": "Extend",
					"presentation": 1,
					"presentation_rect": [
						150,
						96,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Extend",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Extend",
							"parameter_shortname": "Extend",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "The selected clip's file, then as much new material again as the clip plays (placed like variations)",
							"parameter_initial_enable": 0
						}
					},
					"mode": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-extend",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1000,
						170,
						80,
						22
					],
					"text": "prepend extend"
				}
			},
			{
				"box": {
					"id": "obj-button-keep",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						1080,
						140,
						60,
						18
					],
					"text": "Keep",
					"presentation": 1,
					"presentation_rect": [
						72,
						126,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Keep",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Keep",
							"parameter_shortname": "Keep",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "Audition: adds the variation heard last to the sample folder and the set",
							"parameter_initial_enable": 0
						}
					},
					"mode": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-keep",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1080,
						170,
						80,
						22
					],
					"text": "prepend keep"
				}
			},
			{
				"box": {
					"id": "obj-button-audition",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						1160,
						140,
						60,
						18
					],
					"text": "Audition",
					"presentation": 1,
					"presentation_rect": [
						8,
						126,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Audition",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Audition",
							"parameter_shortname": "Audition",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"off",
								"on"
							],
							"parameter_mmax": 1,
							"parameter_info": "Vary plays its variations through the service's audio output instead of adding them; Keep adds the one heard last",
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							]
						}
					},
					"mode": 1,
					"texton": "Audition"
				}
			},
			{
				"box": {
					"id": "obj-prepend-audition",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1160,
						170,
						80,
						22
					],
					"text": "prepend audition"
				}
			},
			{
				"box": {
					"id": "obj-button-repaint",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						1240,
						140,
						60,
						18
					],
					"text": "Repaint",
					"presentation": 1,
					"presentation_rect": [
						150,
						118,
						60,
						18
					],
					"parameter_enable": 1,
					"varname": "Repaint",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Repaint",
							"parameter_shortname": "Repaint",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "Makes part of the selected clip new, the rest kept: in the Arrangement the part under the loop brace (clip Warp off); in the Session a clip with Warp and Loop on, the part under its loop brace",
							"parameter_initial_enable": 0
						}
					},
					"mode": 0
				}
			},
			{
				"box": {
					"id": "obj-prepend-repaint",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1240,
						170,
						80,
						22
					],
					"text": "prepend repaint"
				}
			},
			{
				"box": {
					"id": "obj-label-character",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1320,
						100,
						80,
						18
					],
					"text": "Character",
					"presentation": 1,
					"presentation_rect": [
						558,
						4,
						132,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-guide-brightness",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						1320,
						140,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						558,
						24,
						44,
						48
					],
					"parameter_enable": 1,
					"varname": "Brightness",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Brightness",
							"parameter_shortname": "Brightness",
							"parameter_type": 0,
							"parameter_modmode": 0,
							"parameter_mmin": -2.0,
							"parameter_mmax": 2.0,
							"parameter_unitstyle": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0.0
							],
							"parameter_info": "Steers every render brighter (right) or darker (left); centre: off"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-prepend-guide-brightness",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1320,
						200,
						150,
						22
					],
					"text": "prepend guide brightness"
				}
			},
			{
				"box": {
					"id": "obj-guide-decay",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						1480,
						140,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						602,
						24,
						44,
						48
					],
					"parameter_enable": 1,
					"varname": "Decay",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Decay",
							"parameter_shortname": "Decay",
							"parameter_type": 0,
							"parameter_modmode": 0,
							"parameter_mmin": -2.0,
							"parameter_mmax": 2.0,
							"parameter_unitstyle": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0.0
							],
							"parameter_info": "Steers every render toward a longer (right) or shorter (left) decay; centre: off"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-prepend-guide-decay",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1480,
						200,
						150,
						22
					],
					"text": "prepend guide decay"
				}
			},
			{
				"box": {
					"id": "obj-guide-punch",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						1640,
						140,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						646,
						24,
						44,
						48
					],
					"parameter_enable": 1,
					"varname": "Punch",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Punch",
							"parameter_shortname": "Punch",
							"parameter_type": 0,
							"parameter_modmode": 0,
							"parameter_mmin": -2.0,
							"parameter_mmax": 2.0,
							"parameter_unitstyle": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0.0
							],
							"parameter_info": "Steers every render toward a harder (right) or softer (left) attack; centre: off"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-prepend-guide-punch",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1640,
						200,
						150,
						22
					],
					"text": "prepend guide punch"
				}
			},
			{
				"box": {
					"id": "obj-label-class",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1800,
						100,
						80,
						18
					],
					"text": "Class",
					"presentation": 1,
					"presentation_rect": [
						558,
						78,
						84,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-guide-class",
					"maxclass": "live.menu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"",
						"",
						"float"
					],
					"patching_rect": [
						1800,
						140,
						100,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						558,
						98,
						84,
						15
					],
					"parameter_enable": 1,
					"varname": "Class",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Class",
							"parameter_shortname": "Class",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"off",
								"kick",
								"snare",
								"hat",
								"tom",
								"cymbal",
								"clap",
								"perc"
							],
							"parameter_mmax": 7,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Steers every render toward a drum class, as far as Class Amount says; off: no class"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-prepend-guide-class",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1800,
						200,
						120,
						22
					],
					"text": "prepend class_menu"
				}
			},
			{
				"box": {
					"id": "obj-guide-class-amount",
					"maxclass": "live.dial",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"float"
					],
					"patching_rect": [
						1960,
						140,
						44,
						48
					],
					"presentation": 1,
					"presentation_rect": [
						646,
						76,
						44,
						48
					],
					"parameter_enable": 1,
					"varname": "Class Amount",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Class Amount",
							"parameter_shortname": "Amount",
							"parameter_type": 0,
							"parameter_modmode": 0,
							"parameter_mmin": 0.0,
							"parameter_mmax": 2.0,
							"parameter_unitstyle": 1,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								1.0
							],
							"parameter_info": "How hard every render is steered toward the Class menu's drum class; 0: off"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-label-recipe",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						1960,
						100,
						80,
						18
					],
					"text": "Recipe",
					"presentation": 1,
					"presentation_rect": [
						558,
						116,
						84,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-guide-recipe",
					"maxclass": "umenu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"int",
						"",
						""
					],
					"patching_rect": [
						1960,
						140,
						100,
						22
					],
					"presentation": 1,
					"presentation_rect": [
						558,
						136,
						132,
						15
					],
					"varname": "Recipe",
					"items": [
						"off",
						",",
						"dark-kick",
						",",
						"ringing-tom"
					],
					"parameter_enable": 0,
					"hint": "A saved set of guides the service renders with the dials, Class and Note: your saved recipes and the ones that ship; off: none"
				}
			},
			{
				"box": {
					"id": "obj-prepend-guide-recipe",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1960,
						200,
						120,
						22
					],
					"text": "prepend recipe_menu"
				}
			},
			{
				"box": {
					"id": "obj-label-note",
					"maxclass": "live.comment",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						2120,
						100,
						80,
						18
					],
					"text": "Note",
					"presentation": 1,
					"presentation_rect": [
						696,
						78,
						60,
						18
					],
					"textjustification": 0
				}
			},
			{
				"box": {
					"id": "obj-guide-note",
					"maxclass": "live.menu",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"",
						"",
						"float"
					],
					"patching_rect": [
						2120,
						140,
						100,
						15
					],
					"presentation": 1,
					"presentation_rect": [
						696,
						98,
						60,
						15
					],
					"parameter_enable": 1,
					"varname": "Note",
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Note",
							"parameter_shortname": "Note",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"off",
								"C0",
								"C#0",
								"D0",
								"D#0",
								"E0",
								"F0",
								"F#0",
								"G0",
								"G#0",
								"A0",
								"A#0",
								"B0",
								"C1",
								"C#1",
								"D1",
								"D#1",
								"E1",
								"F1",
								"F#1",
								"G1",
								"G#1",
								"A1",
								"A#1",
								"B1",
								"C2",
								"C#2",
								"D2",
								"D#2",
								"E2",
								"F2",
								"F#2",
								"G2",
								"G#2",
								"A2",
								"A#2",
								"B2"
							],
							"parameter_mmax": 36,
							"parameter_initial_enable": 1,
							"parameter_initial": [
								0
							],
							"parameter_info": "Tunes every render's fundamental to this note (a kick, tom or 808; Live's names, C3 = MIDI 60); off: as rendered"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-prepend-guide-note",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						2120,
						200,
						120,
						22
					],
					"text": "prepend note_menu"
				}
			},
			{
				"box": {
					"id": "obj-prepend-guide-class-amount",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						1960,
						200,
						130,
						22
					],
					"text": "prepend class_amount"
				}
			},
			{
				"box": {
					"id": "obj-recipe-kept",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 4,
					"outlettype": [
						"",
						"",
						"",
						""
					],
					"patching_rect": [
						2100,
						140,
						150,
						22
					],
					"text": "pattr recipe_kept",
					"varname": "recipe_kept",
					"parameter_enable": 1,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Recipe Kept",
							"parameter_shortname": "Recipe",
							"parameter_type": 3,
							"parameter_invisible": 1,
							"parameter_info": "The Recipe menu's recipe, by name, kept with the set"
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-prepend-recipe-kept",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						2100,
						200,
						130,
						22
					],
					"text": "prepend recipe_kept"
				}
			},
			{
				"box": {
					"id": "obj-recipe-name",
					"maxclass": "textedit",
					"numinlets": 1,
					"numoutlets": 4,
					"outlettype": [
						"",
						"",
						"int",
						""
					],
					"patching_rect": [
						2280,
						100,
						120,
						22
					],
					"presentation": 1,
					"presentation_rect": [
						558,
						153,
						96,
						14
					],
					"lines": 1,
					"keymode": 1,
					"text": "",
					"hint": "A name for the guides dialled in now: Return or Save keeps them as a recipe"
				}
			},
			{
				"box": {
					"id": "obj-button-save-recipe",
					"maxclass": "live.text",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						2420,
						60,
						40,
						18
					],
					"text": "Save",
					"presentation": 1,
					"presentation_rect": [
						658,
						153,
						32,
						14
					],
					"parameter_enable": 1,
					"varname": "Save Recipe",
					"mode": 0,
					"saved_attribute_attributes": {
						"valueof": {
							"parameter_longname": "Save Recipe",
							"parameter_shortname": "Save",
							"parameter_type": 2,
							"parameter_modmode": 0,
							"parameter_enum": [
								"val1",
								"val2"
							],
							"parameter_mmax": 1,
							"parameter_info": "Saves the guides dialled in now (Character and Recipe) as a recipe of the name beside it",
							"parameter_initial_enable": 0
						}
					}
				}
			},
			{
				"box": {
					"id": "obj-sel-save-recipe",
					"maxclass": "newobj",
					"numinlets": 2,
					"numoutlets": 2,
					"outlettype": [
						"bang",
						""
					],
					"patching_rect": [
						2420,
						90,
						50,
						22
					],
					"text": "sel 1"
				}
			},
			{
				"box": {
					"id": "obj-route-recipe-name",
					"maxclass": "newobj",
					"numinlets": 2,
					"numoutlets": 2,
					"outlettype": [
						"",
						""
					],
					"patching_rect": [
						2280,
						140,
						70,
						22
					],
					"text": "route text"
				}
			},
			{
				"box": {
					"id": "obj-prepend-save-recipe",
					"maxclass": "newobj",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						2280,
						200,
						130,
						22
					],
					"text": "prepend save_recipe"
				}
			}
		],
		"lines": [
			{
				"patchline": {
					"destination": [
						"obj-deferlow",
						0
					],
					"source": [
						"obj-thisdevice",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-init",
						0
					],
					"source": [
						"obj-deferlow",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-init",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-udpsend",
						0
					],
					"source": [
						"obj-js",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-osc",
						0
					],
					"source": [
						"obj-udpreceive",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-osc",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-midiselect",
						0
					],
					"source": [
						"obj-midiin",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-note",
						0
					],
					"source": [
						"obj-midiselect",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-note",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-noise",
						0
					],
					"source": [
						"obj-noise",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-noise",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-count",
						0
					],
					"source": [
						"obj-count",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-count",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-steps",
						0
					],
					"source": [
						"obj-steps",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-steps",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-target",
						0
					],
					"source": [
						"obj-target",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-target",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-vary",
						0
					],
					"source": [
						"obj-button-vary",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-vary",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-generate",
						0
					],
					"source": [
						"obj-button-generate",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-generate",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-interpolate",
						0
					],
					"source": [
						"obj-button-interpolate",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-interpolate",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-status",
						0
					],
					"source": [
						"obj-js",
						1
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-files",
						0
					],
					"source": [
						"obj-js",
						2
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-midiselect",
						7
					],
					"destination": [
						"obj-midiout",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-js",
						3
					],
					"destination": [
						"obj-udpreceive",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-js",
						4
					],
					"destination": [
						"obj-midiselect",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-button-cancel",
						0
					],
					"destination": [
						"obj-prepend-cancel",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-prepend-cancel",
						0
					],
					"destination": [
						"obj-js",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-trigger-low",
						0
					],
					"destination": [
						"obj-prepend-trigger-low",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-prepend-trigger-low",
						0
					],
					"destination": [
						"obj-js",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-trigger-high",
						0
					],
					"destination": [
						"obj-prepend-trigger-high",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-prepend-trigger-high",
						0
					],
					"destination": [
						"obj-js",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-extend",
						0
					],
					"source": [
						"obj-button-extend",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-extend",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-keep",
						0
					],
					"source": [
						"obj-button-keep",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-keep",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-audition",
						0
					],
					"source": [
						"obj-button-audition",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-audition",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-repaint",
						0
					],
					"source": [
						"obj-button-repaint",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-repaint",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-guide-brightness",
						0
					],
					"source": [
						"obj-guide-brightness",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-guide-brightness",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-guide-decay",
						0
					],
					"source": [
						"obj-guide-decay",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-guide-decay",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-guide-punch",
						0
					],
					"source": [
						"obj-guide-punch",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-guide-punch",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-guide-class",
						0
					],
					"source": [
						"obj-guide-class",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-guide-class",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-guide-class-amount",
						0
					],
					"source": [
						"obj-guide-class-amount",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-guide-class-amount",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-guide-recipe",
						0
					],
					"source": [
						"obj-guide-recipe",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-guide-recipe",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-prepend-guide-note",
						0
					],
					"source": [
						"obj-guide-note",
						0
					]
				}
			},
			{
				"patchline": {
					"destination": [
						"obj-js",
						0
					],
					"source": [
						"obj-prepend-guide-note",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-js",
						5
					],
					"destination": [
						"obj-guide-recipe",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-js",
						6
					],
					"destination": [
						"obj-recipe-kept",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-recipe-kept",
						0
					],
					"destination": [
						"obj-prepend-recipe-kept",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-prepend-recipe-kept",
						0
					],
					"destination": [
						"obj-js",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-button-save-recipe",
						0
					],
					"destination": [
						"obj-sel-save-recipe",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-sel-save-recipe",
						0
					],
					"destination": [
						"obj-recipe-name",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-recipe-name",
						0
					],
					"destination": [
						"obj-route-recipe-name",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-route-recipe-name",
						0
					],
					"destination": [
						"obj-prepend-save-recipe",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-prepend-save-recipe",
						0
					],
					"destination": [
						"obj-js",
						0
					]
				}
			}
		],
		"parameters": {
			"obj-noise": [
				"Noise",
				"Noise",
				0
			],
			"obj-count": [
				"Count",
				"Count",
				0
			],
			"obj-steps": [
				"Steps",
				"Steps",
				0
			],
			"obj-target": [
				"Target",
				"Target",
				0
			],
			"obj-button-vary": [
				"Vary",
				"Vary",
				0
			],
			"obj-button-generate": [
				"Generate",
				"Generate",
				0
			],
			"obj-button-interpolate": [
				"Interpolate",
				"Interpolate",
				0
			],
			"obj-button-cancel": [
				"Cancel",
				"Cancel",
				0
			],
			"obj-trigger-low": [
				"Trigger Low",
				"Trigger Low",
				0
			],
			"obj-trigger-high": [
				"Trigger High",
				"Trigger High",
				0
			],
			"obj-button-extend": [
				"Extend",
				"Extend",
				0
			],
			"obj-button-keep": [
				"Keep",
				"Keep",
				0
			],
			"obj-button-audition": [
				"Audition",
				"Audition",
				0
			],
			"obj-button-repaint": [
				"Repaint",
				"Repaint",
				0
			],
			"obj-guide-brightness": [
				"Brightness",
				"Brightness",
				0
			],
			"obj-guide-decay": [
				"Decay",
				"Decay",
				0
			],
			"obj-guide-punch": [
				"Punch",
				"Punch",
				0
			],
			"obj-guide-class": [
				"Class",
				"Class",
				0
			],
			"obj-guide-class-amount": [
				"Class Amount",
				"Amount",
				0
			],
			"obj-guide-note": [
				"Note",
				"Note",
				0
			],
			"obj-recipe-kept": [
				"Recipe Kept",
				"Recipe",
				0
			],
			"obj-button-save-recipe": [
				"Save Recipe",
				"Save",
				0
			],
			"inherited_shortname": 1
		},
		"latency": 0,
		"is_mpe": 0,
		"minimum_live_version": "",
		"minimum_max_version": "",
		"platform_compatibility": 0,
		"autosave": 0
	}
}
