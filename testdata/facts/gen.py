import json, copy
GiB=1<<30
def nvme(name, serial, size=64*GiB, model="Samsung SSD 980 PRO 1TB", content="blank", **kw):
    d={"name":name,"path":"/dev/"+name,"size_bytes":size,"logical_sector_size":512,"physical_sector_size":512,
       "transport":"nvme","model":model,"serial":serial,"wwn":"eui.0025"+serial.lower(),
       "by_id":["nvme-%s_%s"%(model.replace(" ","_"),serial)],"by_path":"pci-0000:00:0%s.0-nvme-1"%name[-3],"content":content}
    d.update(kw); return d
cd={"name":"sr0","path":"/dev/sr0","size_bytes":800<<20,"logical_sector_size":2048,"physical_sector_size":2048,"transport":"ata",
    "model":"QEMU DVD-ROM","serial":"QM00003","removable":True,"read_only":True,"content":"foreign",
    "signatures":[{"type":"iso9660","offset":32768,"label":"NODEINIT","where":"disk"}],"boot_medium":True}
usb={"name":"sdb","path":"/dev/sdb","size_bytes":16*GiB,"logical_sector_size":512,"physical_sector_size":512,"transport":"usb",
    "model":"Cruzer Blade","vendor":"SanDisk","serial":"4C530001220528","removable":True,"content":"foreign",
    "signatures":[{"type":"iso9660","offset":32768,"label":"NODEINIT","where":"disk"}],"boot_medium":True,
    "by_id":["usb-SanDisk_Cruzer_Blade_4C530001220528-0:0"]}
img={"source":"label:NODEINIT","name":"demo-node","version":"1.0","arch":"amd64","signed":True,"pinned":False,"root_size":300<<20}
base={"disks":[],"memory_bytes":4*GiB,"efi":True,"tpm":False,"nics":[{"name":"eth0","mac":"52:54:00:12:34:56","carrier":True,"driver":"virtio_net"}],
      "consoles":["ttyS0"],"dmi":{"vendor":"QEMU","product":"Standard PC (Q35 + ICH9, 2009)","serial":"","uuid":"6a1f3e1c-0000-4000-8000-000000000001"},"image":img}
def w(name, **kw):
    f=copy.deepcopy(base); f.update(kw)
    if f.get("image") is None: f.pop("image")
    with open(name,"w") as fh:
        json.dump(f, fh, indent=2); fh.write("\n")
w("one-nvme.json", disks=[nvme("nvme0n1","S5GXNF0R100001"), cd])
# Under BIOS: with GRUB's images in the initramfs, and without.
w("bios.json", disks=[nvme("nvme0n1","S5GXNF0R100001"), cd], efi=False, bios_loader="/lib/nodeinit/grub-i386-pc")
w("bios-no-grub.json", disks=[nvme("nvme0n1","S5GXNF0R100001"), cd], efi=False)
w("two-identical.json", disks=[nvme("nvme0n1","S5GXNF0R100001"), nvme("nvme1n1","S5GXNF0R100002"), usb])
w("usb-only.json", disks=[usb])
w("foreign.json", disks=[nvme("nvme0n1","S5GXNF0R100001", content="foreign",
    signatures=[{"type":"gpt","offset":512,"where":"disk"},{"type":"ext4","offset":1048576+1024,"label":"data","where":"nvme0n1p1"}],
    partitions=[{"number":1,"name":"nvme0n1p1","path":"/dev/nvme0n1p1","start_byte":1048576,"size_bytes":60*GiB,"fstype":"ext4","fslabel":"data"}]), cd])
w("small.json", disks=[nvme("nvme0n1","S5GXNF0R100001", size=4*GiB), cd])
lay=[["NODE-ESP",1048576,536870912,"vfat"],["node-root-a",537919488,2147483648,"squashfs"],["node-root-b",2685403136,2147483648,""],
     ["node-config",4832886784,67108864,"ext4"],["node-logging",4899995648,2147483648,"ext4"],["node-swap",7047479296,2147483648,"swap"],["node-data",9194962944,59523465216,"ext4"]]
gpt_type={"NODE-ESP":"c12a7328-f81f-11d2-ba4b-00a0c93ec93b","node-root-a":"4f68bce3-e8cd-4db1-96e7-fbcaf984b709","node-root-b":"4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
          "node-swap":"0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"}
inst_parts=[dict(number=i+1,name="nvme0n1p%d"%(i+1),path="/dev/nvme0n1p%d"%(i+1),start_byte=st,size_bytes=sz,partlabel=n,
                 type_guid=gpt_type.get(n,"0fc63daf-8483-4772-8e79-3d69d8477de4"),**({"fstype":fs} if fs else {})) for i,(n,st,sz,fs) in enumerate(lay)]
ours=nvme("nvme0n1","S5GXNF0R100001", content="ours", installed_version="1.0", partitions=inst_parts,
          signatures=[{"type":"gpt","offset":512,"where":"disk"}])
data2=nvme("nvme1n1","S5GXNF0R100009", size=128*GiB, model="Data Disk", content="foreign",
          signatures=[{"type":"xfs","offset":0,"label":"vmstore","where":"disk"}])
inst={"disk":"nvme0n1","active_slot":"a","slots":{"a":{"version":"1.0","state":"good"},"b":{}}}
w("installed.json", disks=[ours, data2, cd], install=inst)
w("installed-v1.1-image.json", disks=[ours, data2, cd], install=inst, image=dict(img, version="1.1"))
# A BIOS install (GRUB), upgraded from a machine that runs UEFI.
w("installed-bios-v1.1-image.json", disks=[ours, data2, cd], install=dict(inst, bios=True), image=dict(img, version="1.1"))
w("installed-v2-image.json", disks=[ours, data2, cd], install=inst, image=dict(img, version="2.0"))
mounted_b=copy.deepcopy(ours); mounted_b["partitions"][2]["mounts"]=["/run/nodeinit/lower"]; mounted_b["mounts"]=["/run/nodeinit/lower"]
w("installed-slot-b-mounted.json", disks=[mounted_b, data2, cd], install=inst, image=dict(img, version="1.1"))
w("installed-old-image.json", disks=[ours, data2, cd], install=inst, image=dict(img, version="0.9"))
ov=nvme("sda","WD-WCC4N0000001", model="WDC WD10EZEX", content="ovirt", transport="ata", by_path="pci-0000:00:1f.2-ata-1",
        by_id=["ata-WDC_WD10EZEX_WD-WCC4N0000001"], wwn="0x50014ee2b5a1c001",
        partitions=[{"number":1,"name":"sda1","path":"/dev/sda1","start_byte":1<<20,"size_bytes":50<<20,"fslabel":"Boot","fstype":"ext2"},
                    {"number":2,"name":"sda2","path":"/dev/sda2","start_byte":51<<20,"size_bytes":1<<30,"fslabel":"Root","fstype":"ext2"},
                    {"number":3,"name":"sda3","path":"/dev/sda3","start_byte":(51<<20)+(1<<30),"size_bytes":1<<30,"fslabel":"RootBackup","fstype":"ext2"},
                    {"number":4,"name":"sda4","path":"/dev/sda4","start_byte":(51<<20)+(2<<30),"size_bytes":60<<30}],
        signatures=[{"type":"dos","offset":510,"where":"disk"},{"type":"ext2","offset":0,"label":"Root","where":"sda2"},{"type":"LVM2_member","offset":0,"label":"HostVG","where":"sda4"}])
w("ovirt.json", disks=[ov, cd], install={"disk":"sda","ovirt":True})
w("unsigned-image.json", disks=[nvme("nvme0n1","S5GXNF0R100001"), cd], image=dict(img, signed=False, error="manifest.json has no valid signature from a trusted key",
   hint="sign the bundle with 'nodeinit image sign', add nodeinit.image.sha256=<manifest sha256>, or add nodeinit.insecure"))
w("no-image.json", disks=[nvme("nvme0n1","S5GXNF0R100001")], image=None)
w("admin-hash-image.json", disks=[nvme("nvme0n1","S5GXNF0R100001"), cd], image=dict(img, admin_hash=True))
# App-data disks: storage_init's disks after the first (oVirt's HostVG and AppVG lists).
MiB=1<<20
def ata(name, serial, size, model="WDC WD10EZEX", **kw):
    n="abcdefgh".index(name[-1])+1
    return nvme(name, serial, size=size, model=model, transport="ata", wwn="0x50014ee2b5a1c00%d"%n,
                by_id=["ata-%s_%s"%(model.replace(" ","_"),serial)], by_path="pci-0000:00:1f.2-ata-%d"%n, **kw)
vmstore=[{"type":"gpt","offset":512,"where":"disk"},{"type":"xfs","offset":1048576,"label":"vmstore","where":"sdd1"}]
w("several-disks.json", disks=[ata("sda","WD-WCC4N0000001",64*GiB), ata("sdb","WD-WCC4N0000002",128*GiB), ata("sdc","WD-WCC4N0000003",32*GiB),
    ata("sdd","WD-WCC4N0000004",128*GiB, content="foreign", signatures=vmstore,
        partitions=[{"number":1,"name":"sdd1","path":"/dev/sdd1","start_byte":MiB,"size_bytes":128*GiB-2*MiB,"fstype":"xfs","fslabel":"vmstore"}]),
    ata("sde","WD-WCC4N0000005",800*MiB), cd])
def uuid(n): return "%08x-0000-4000-8000-%012x"%(n, n)
def on(dname, parts):
    return [dict(p, name=dname+str(p["number"]), path="/dev/"+dname+str(p["number"])) for p in parts]
sda_parts=[dict(p, partuuid=uuid(0x100+p["number"])) for p in on("sda", inst_parts)]
def appdisk(dname, serial, size, n, swapMiB):
    parts=[{"number":1,"start_byte":MiB,"size_bytes":swapMiB*MiB,"partlabel":"node-swap2","type_guid":"0657fd6d-a4ab-43c4-84e5-0933c84b4f4f",
            "partuuid":uuid(0x200+n*16+1),"fstype":"swap","fslabel":"node-swap2"},
           {"number":2,"start_byte":(1+swapMiB)*MiB,"size_bytes":size-(2+swapMiB)*MiB,"partlabel":"node-app%d"%n,"type_guid":"0fc63daf-8483-4772-8e79-3d69d8477de4",
            "partuuid":uuid(0x200+n*16+2),"fstype":"ext4","fslabel":"node-app%d"%n}]
    sigs=[{"type":"gpt","offset":512,"where":"disk"},{"type":"PMBR","offset":510,"where":"disk"},
          {"type":"swap","offset":MiB+4086,"label":"node-swap2","where":dname+"1"},{"type":"ext4","offset":(1+swapMiB)*MiB+1080,"label":"node-app%d"%n,"where":dname+"2"}]
    return ata(dname, serial, size, content="app-data", partitions=on(dname, parts), signatures=sigs)
app_inst=dict(inst, disk="sda", app_data=[{"index":1,"data_partuuid":uuid(0x212),"swap_partuuid":uuid(0x211)},
                                          {"index":2,"data_partuuid":uuid(0x222),"swap_partuuid":uuid(0x221)}])
w("installed-app-data.json", disks=[ata("sda","WD-WCC4N0000001",64*GiB, content="ours", installed_version="1.0", partitions=sda_parts,
        signatures=[{"type":"gpt","offset":512,"where":"disk"}]),
    appdisk("sdb","WD-WCC4N0000002",128*GiB,1,1024), appdisk("sdc","WD-WCC4N0000003",32*GiB,2,1024),
    ata("sdd","WD-WCC4N0000004",128*GiB), cd], install=app_inst, image=dict(img, version="2.0"))
